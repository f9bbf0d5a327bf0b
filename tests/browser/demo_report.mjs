// tests/browser/demo_report.mjs — opens a `rlhf demo` report.html in Debian's
// chromium (headless, via playwright-core) and checks what a reader sees.
// Called by demo_report.sh with RLHF_REPORT, RLHF_SUMMARY and RLHF_SHOT set.
// Prints "N passed, N failed".
import { chromium } from 'playwright-core';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const REPORT = process.env.RLHF_REPORT, SUMMARY = process.env.RLHF_SUMMARY, SHOT = process.env.RLHF_SHOT;
let pass = 0, fail = 0;
const check = (cond, what) => { if (cond) pass++; else { fail++; console.log('  FAIL: ' + what); } };

const summary = JSON.parse(readFileSync(SUMMARY, 'utf8'));
const url = pathToFileURL(REPORT).href;
const profile = mkdtempSync(join(tmpdir(), 'rlhf-chromium-'));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
  viewport: {width: 1200, height: 900},
});
const errors = [], foreign = [];
const page = ctx.pages()[0] || await ctx.newPage();
page.on('pageerror', (e) => errors.push('page error: ' + String(e)));
page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') errors.push('console ' + m.type() + ': ' + m.text()); });
page.on('requestfailed', (r) => errors.push('request failed: ' + r.url()));
// A self-contained report fetches nothing but itself.
page.on('request', (r) => { if (r.url() !== url && !r.url().startsWith('data:')) foreign.push(r.url()); });
try {
  const resp = await page.goto(url, {waitUntil: 'load'});
  check(resp === null || resp.ok(), 'report loads');
  check((await page.title()) === 'rlhf.c demo report', 'title: ' + await page.title());
  check((await page.textContent('h1')).includes('evaluators can be fooled'), 'heading');

  // Results: one row per method in summary.json (+ header), accuracy as summary says.
  // (a method whose command is not in this build is a row that says "skipped: why")
  const rows = await page.$$eval('#results-table tr', (trs) => trs.filter((tr) => !tr.querySelector('td.skip')).map((tr) => [...tr.children].map((td) => td.textContent)));
  check(rows.length === 1 + summary.methods.length, `results rows ${rows.length} = 1 + ${summary.methods.length} methods`);
  const skipped = await page.$$eval('#results-table td.skip', (tds) => tds.map((td) => td.textContent));
  check(skipped.every((t) => t.startsWith('skipped: ') && t.length > 12), 'skipped rows say why: ' + skipped.join(' | '));
  for (const m of summary.methods) {
    const r = rows.find((x) => x[0] === m.method);
    const want = (100 * m.eval.heldout_accuracy).toFixed(1) + '%';
    check(r && r[1] === want, `results row ${m.method}: accuracy ${r && r[1]} = ${want}`);
  }

  // Checks: five rows, PASS/FAIL as summary.json's "checks", each with its numbers.
  const checks = await page.$$eval('#checks-table tr[data-check]', (trs) => trs.map((tr) => ({
    name: tr.dataset.check, pass: tr.dataset.pass === '1', result: tr.children[1].textContent,
    color: getComputedStyle(tr.children[1]).color, detail: tr.children[3].textContent})));
  check(checks.length === 5 && summary.checks.length === 5, 'five checks: ' + checks.map((c) => c.name).join(','));
  for (const c of summary.checks) {
    const d = checks.find((x) => x.name === c.name);
    check(d && d.pass === c.pass && d.result === (c.pass ? 'PASS' : 'FAIL'), `check ${c.name} shown as ${d && d.result}, summary.json pass=${c.pass}`);
    check(d && d.detail.length > 10 && d.detail === c.detail, `check ${c.name} shows its numbers`);
  }
  const colors = new Set(checks.map((c) => c.result + c.color));
  check(colors.size === new Set(checks.map((c) => c.result)).size, 'PASS and FAIL drawn in their own colours');
  const heading = await page.textContent('#checks');
  const npass = summary.checks.filter((c) => c.pass).length;
  check(heading.includes(`${npass} of 5 passed`), 'checks heading counts: ' + heading);

  // Plots: inline SVGs, each laid out with a size and drawing something.
  const svgs = await page.$$eval('svg', (ss) => ss.map((s) => {
    const b = s.getBoundingClientRect();
    return {w: b.width, h: b.height, marks: s.querySelectorAll('polyline,circle,rect').length, title: (s.querySelector('text') || {}).textContent};
  }));
  check(svgs.length >= 6, 'at least 6 SVG plots: ' + svgs.length);
  check(svgs.every((s) => s.w > 100 && s.h > 100), 'every plot laid out: ' + svgs.map((s) => `${s.w}x${s.h}`).join(' '));
  check(svgs.every((s) => s.marks >= 1), 'every plot draws marks');
  check(svgs.some((s) => /sqrt\(KL\)/.test(s.title)), 'a plot against sqrt(KL)');
  check(svgs.some((s) => /satisfaction by group/.test(s.title)), 'the per-group bars');

  // Per-group table (utilitarian vs maximin) and stage times.
  const groups = await page.$$eval('#groups-table tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  check(groups.length === 3 && groups[1][0].startsWith('utilitarian') && groups[2][0].startsWith('maximin'), 'groups table: ' + JSON.stringify(groups));
  const stages = await page.$$eval('#stages-table tr', (trs) => trs.length);
  check(stages >= 10, 'stages table rows: ' + stages);
  check((await page.textContent('#serve + p')).includes('rlhf serve --model'), 'the serve command');

  await page.screenshot({path: SHOT, fullPage: true});
  check(errors.length === 0, 'no page or console errors: ' + errors.join('; '));
  check(foreign.length === 0, 'nothing fetched: ' + foreign.join(' '));
} catch (e) {
  fail++;
  console.log('  FAIL: ' + (e && e.stack ? e.stack : e));
  try { await page.screenshot({path: SHOT, fullPage: true}); } catch (e2) { /* ignore */ }
}
await ctx.close();
rmSync(profile, {recursive: true, force: true});
console.log(`${pass} passed, ${fail} failed`);
process.exit(fail ? 1 : 0);
