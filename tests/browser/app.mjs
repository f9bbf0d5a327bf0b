// tests/browser/app.mjs — drives the feedback app in Debian's chromium
// (headless, via playwright-core; no browser download). Called by app.sh with
// RLHF_URL, RLHF_TOKEN and RLHF_ARTIFACTS set. Prints "N passed, N failed".
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const U = process.env.RLHF_URL, TOKEN = process.env.RLHF_TOKEN, ART = process.env.RLHF_ARTIFACTS;
let pass = 0, fail = 0;
const check = (cond, what) => { if (cond) pass++; else { fail++; console.log('  FAIL: ' + what); } };

const profile = mkdtempSync(join(tmpdir(), 'rlhf-chromium-'));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: {width: 1100, height: 800},
});
const errors = [];
const page = ctx.pages()[0] || await ctx.newPage();
page.on('pageerror', (e) => errors.push(String(e)));
page.on('dialog', async (d) => { errors.push('dialog opened: ' + d.message()); await d.dismiss(); });
// Nothing may be fetched from anywhere but this server.
const foreign = [];
page.on('request', (r) => { if (!r.url().startsWith(U) && !r.url().startsWith('data:')) foreign.push(r.url()); });
const result = {};
try {
  // ---- log in ----
  await page.goto(U + '/');
  await page.fill('#token', 'rlhf1.1.wrong');
  await page.click('#login-btn');
  await page.waitForFunction(() => document.getElementById('status').textContent.includes('Login failed'));
  check(true, 'bad token refused');
  await page.fill('#token', TOKEN);
  await Promise.all([page.waitForURL('**/chat'), page.click('#login-btn')]);
  check(page.url().endsWith('/chat'), 'logged in, on the chat page');
  await page.waitForSelector('#dummy-banner:not([hidden])');
  check(await page.isVisible('#dummy-banner'), 'dummy generator banner shown');
  check((await page.textContent('#who')).includes('browser-tester'), 'name shown');

  // ---- chat 1: streamed, XSS attempt in the prompt, thumbs up ----
  const xss = 'Hi <img src=x onerror="window.__xss=1"> <script>window.__xss=2</script> and some more words to stream';
  await page.fill('#prompt', xss);
  await page.click('#send');
  // See partial output while the answer is still streaming.
  const partial = await page.waitForFunction(() => {
    const b = document.querySelector('.msg.assistant.streaming .text');
    return b && b.textContent.length > 0 && b.textContent.length < 40 ? b.textContent : null;
  }, null, {polling: 10, timeout: 10000}).then((h) => h.jsonValue()).catch(() => null);
  check(partial !== null, 'saw a partial answer while streaming: ' + JSON.stringify(partial));
  await page.waitForSelector('.msg.assistant:nth-of-type(2) .feedback');
  const a1 = await page.textContent('.msg.assistant:nth-of-type(2) .text');
  check(partial !== null && a1.length > partial.length && a1.startsWith(partial), 'final answer extends the streamed part');
  check(a1.includes('<img src=x onerror="window.__xss=1">'), 'model output shown as text, not HTML');
  check(await page.evaluate(() => window.__xss === undefined), 'no script ran from model output');
  check(await page.locator('.msg img').count() === 0, 'no <img> element created from output');
  await page.click('.msg.assistant:nth-of-type(2) .thumb-up');
  await page.waitForFunction(() => document.querySelector('.msg.assistant:nth-of-type(2) .feedback .tag').textContent === 'saved');
  check(true, 'thumbs up saved');

  // ---- chat 2: thumbs down with a comment ----
  await page.fill('#prompt', 'Second question, please answer briefly');
  await page.click('#send');
  await page.waitForSelector('.msg.assistant:nth-of-type(4) .feedback');
  await page.fill('.msg.assistant:nth-of-type(4) .comment', 'too vague <b>really</b>');
  await page.click('.msg.assistant:nth-of-type(4) .thumb-down');
  await page.waitForFunction(() => document.querySelector('.msg.assistant:nth-of-type(4) .feedback .tag').textContent === 'saved');
  check(true, 'thumbs down with comment saved');
  await page.screenshot({path: join(ART, 'chat.png'), fullPage: true});

  // ---- stop button ----
  await page.fill('#prompt', 'A third message that we stop early ' + 'word '.repeat(40));
  await page.click('#send');
  await page.waitForFunction(() => { const b = document.querySelector('.msg.assistant.streaming .text'); return b && b.textContent.length > 0; });
  await page.click('#stop');
  await page.waitForSelector('.msg.assistant:nth-of-type(6) .feedback');
  check((await page.textContent('.msg.assistant:nth-of-type(6)')).includes('stopped'), 'stop button ends the answer early');

  // ---- compare: A better ----
  await page.goto(U + '/compare');
  await page.fill('#cmp-prompt', 'Which is better?');
  await page.click('#cmp-get');
  await page.waitForSelector('#cmp:not([hidden])');
  check((await page.textContent('#cmp-a')).length > 0 && (await page.textContent('#cmp-b')).length > 0, 'two answers shown');
  await page.screenshot({path: join(ART, 'compare.png'), fullPage: true});
  await page.click('#choose-A');
  await page.waitForFunction(() => document.getElementById('status').textContent === 'saved');
  check(true, 'A/B choice saved');

  // ---- rank: 3 answers, move the first one down ----
  await page.goto(U + '/rank');
  await page.fill('#rank-prompt', 'Rank these answers');
  await page.selectOption('#rank-k', '3');
  await page.click('#rank-get');
  await page.waitForSelector('#rank:not([hidden])');
  check(await page.locator('#rank-list li').count() === 3, 'three answers to rank');
  await page.click('#rank-list li:nth-child(1) .down');
  const order = await page.$$eval('#rank-list li', (ls) => ls.map((l) => l.dataset.label).join(''));
  check(order === 'BAC', 'reordered to BAC: ' + order);
  await page.screenshot({path: join(ART, 'rank.png'), fullPage: true});
  await page.click('#rank-submit');
  await page.waitForFunction(() => document.getElementById('status').textContent === 'saved');
  check(true, 'ranking saved');

  // ---- optional profile: nothing stored without consent, stored with it ----
  await page.goto(U + '/profile');
  await page.waitForSelector('#q-region');
  await page.selectOption('#q-region', 'EU');
  await page.click('#profile-save');
  await page.waitForFunction(() => document.getElementById('status').textContent === 'nothing stored (no consent)');
  check(true, 'profile without consent stores nothing');
  await page.check('#consent');
  await page.click('#profile-save');
  await page.waitForFunction(() => document.getElementById('status').textContent === 'saved');
  await page.screenshot({path: join(ART, 'profile.png'), fullPage: true});
  check(true, 'profile saved with consent');

  // ---- operator view ----
  await page.goto(U + '/operator');
  await page.waitForSelector('#op:not([hidden])');
  await page.waitForFunction(() => [...document.querySelectorAll('.charts img')].every((i) => i.complete && i.naturalWidth > 1));
  await page.waitForFunction(() => { const i = document.querySelector('.run-chart'); return i && i.complete && i.naturalWidth > 1; });
  check(await page.locator('.run-chart').count() === 1, 'one training-run plot');
  check(await page.inputValue('.run-key') === 'loss', 'run plot shows loss first');
  result.total = await page.textContent('#op-total');
  check(result.total === '4', 'operator total is 4: ' + result.total);
  await page.screenshot({path: join(ART, 'operator.png'), fullPage: true});

  check(errors.length === 0, 'no page errors: ' + errors.join('; '));
  check(foreign.length === 0, 'no requests to other origins: ' + foreign.join(' '));
} catch (e) {
  fail++;
  console.log('  FAIL: ' + (e && e.stack ? e.stack : e));
  try { await page.screenshot({path: join(ART, 'failure.png'), fullPage: true}); } catch (e2) { /* ignore */ }
}
await ctx.close();
rmSync(profile, {recursive: true, force: true});
writeFileSync(join(ART, 'browser-result.json'), JSON.stringify({pass, fail, ...result}) + '\n');
console.log(`${pass} passed, ${fail} failed`);
process.exit(fail ? 1 : 0);
