// tokenizer_js.js — the JavaScript side of bench/tokenizer.sh.
//   node tokenizer_js.js corpus SHARED_DIR OUT_FILE   writes the bench text
//   node tokenizer_js.js time FILE REPEATS            times js-tiktoken (gpt2)
// The bench text: tinyshakespeare, every OASST message text and the hh-rlhf
// test dialogues (distinct, mixed ASCII / non-ASCII text).
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const mod = (name) => require(path.join(__dirname, '../tests/js/node_modules', name));
const [cmd, a, b] = process.argv.slice(2);
if (cmd === 'corpus') {
  const parts = [fs.readFileSync(path.join(a, 'data/tinyshakespeare.txt'), 'utf8')];
  for (const line of fs.readFileSync(path.join(a, 'data/oasst_en_100_trees.jsonl'), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const walk = (m) => { parts.push(m.text); (m.replies || []).forEach(walk); };
    walk(JSON.parse(line).prompt);
  }
  const hh = zlib.gunzipSync(fs.readFileSync(path.join(a, 'data/hh_rlhf_harmless_base_test.jsonl.gz'))).toString('utf8');
  for (const line of hh.split('\n')) if (line.trim()) parts.push(JSON.parse(line).chosen);
  fs.writeFileSync(b, parts.join('\n'));
} else if (cmd === 'time') {
  const { getEncoding } = mod('js-tiktoken');
  const enc = getEncoding('gpt2');
  const text = fs.readFileSync(a, 'utf8');
  const bytes = Buffer.byteLength(text, 'utf8');
  let best = Infinity, n = 0;
  for (let r = 0; r < Number(b || 3); r++) {
    const t0 = process.hrtime.bigint();
    n = enc.encode(text, [], []).length;
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    best = Math.min(best, dt);
  }
  console.log(`${bytes} ${n} ${best}`);
}
