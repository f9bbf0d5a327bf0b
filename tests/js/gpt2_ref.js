// gpt2_ref.js — reference ids from the JavaScript GPT-2 encoders, for
// tests/js/gpt2_equiv.sh.   node gpt2_ref.js SHARED_DIR OUT_DIR
// Writes OUT_DIR/cases.bin (per case: u32 LE byte length + UTF-8 bytes),
// OUT_DIR/names.txt (one label per case), and the ids of every case, one line
// each, from gpt-3-encoder (ref_g3e.txt) and js-tiktoken's gpt2 (ref_tt.txt).
const fs = require('fs');
const path = require('path');
const g3e = require('gpt-3-encoder');
const { getEncoding } = require('js-tiktoken');
const [shared, out] = process.argv.slice(2);
const tt = getEncoding('gpt2');

const cases = [];  // [name, text]
cases.push(['tinyshakespeare.txt', fs.readFileSync(path.join(shared, 'data/tinyshakespeare.txt'), 'utf8')]);
let nmsg = 0;
for (const line of fs.readFileSync(path.join(shared, 'data/oasst_en_100_trees.jsonl'), 'utf8').split('\n')) {
  if (!line.trim()) continue;
  const walk = (m) => { cases.push([`oasst message ${nmsg++} (${m.message_id})`, m.text]); (m.replies || []).forEach(walk); };
  walk(JSON.parse(line).prompt);
}
const crafted = [
  "I'm, you're, he's, we've, they'll, I'd, can't, won't", "'S 'T 'RE 'LL 'VE 'M 'D", "rock'n'roll ''s it's's '' ' 's",
  'a  b', 'a   b', '  leading', 'trailing   ', '   ', '\t\t x', '\n\n\n', 'a \n b', 'x\r\n y', ' \u00a0 x', '\u3000x', 'a\u2028b\u2029c',
  '\u0085next line', '\ufeffbom', '\u180e\u200b\u200czw',
  '123456789 1,000,000 3.14159 -42 ٣٤٥ Ⅻ ½ ² ¼', '2024-01-01T12:30:00Z', 'x1y2z3 007',
  '!!!???...---***', '(a)[b]{c}<d>', '@user #tag $100 %50 ^&*~`|\\', 'http://example.com/path?q=1&r=2#frag',
  '😀😃 👍🏽 👨‍👩‍👧‍👦 🇺🇸 I ❤️ you', '日本語のテキストです。', '中文文本，标点。', '한국어 텍스트', 'Привет, мир!', 'مرحبا بالعالم', 'שלום עולם', 'नमस्ते दुनिया',
  'Ünïcödé façade naïve — “quotes” ‘single’ … « » ¿qué?', 'n\u0303 e\u0301 combining', 'ǅ ǈ ǋ ǲ titlecase', 'ﬁ ﬂ ligatures',
  '<|endoftext|> hello <|end|> <|bos|>', '\u0000\u0001\u001f\u007f controls', 'def f(x):\n    return x**2  # comment\n\tpass\n',
  'a'.repeat(5000), ' '.repeat(3000) + 'x', '1'.repeat(1000), '\n'.repeat(500) + 'y', 'ab '.repeat(2000), '', ' ', 'x',
];
crafted.forEach((s, i) => cases.push([`crafted ${i}`, s]));

// gpt-3-encoder's encode() concatenates arrays per piece (quadratic), so long
// texts go in chunks cut where the pre-split cuts anyway: between two pieces
// that end and start with a non-space character.
const pat = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
function g3eEncode(text) {
  if (text.length < 20000) return g3e.encode(text);
  const ids = [];
  let chunk = '', prevEnd = '';
  for (const m of text.matchAll(pat)) {
    const piece = m[0];
    if (chunk.length > 10000 && !/\s/u.test(prevEnd) && !/\s/u.test(piece[0])) {
      for (const id of g3e.encode(chunk)) ids.push(id);
      chunk = '';
    }
    chunk += piece;
    prevEnd = piece[piece.length - 1];
  }
  for (const id of g3e.encode(chunk)) ids.push(id);
  return ids;
}

const bufs = [], g = [], t = [], names = [];
for (const [name, text] of cases) {
  const b = Buffer.from(text, 'utf8');
  const h = Buffer.alloc(4);
  h.writeUInt32LE(b.length);
  bufs.push(h, b);
  names.push(name);
  g.push(g3eEncode(text).join(' '));
  t.push(tt.encode(text, [], []).join(' '));
}
fs.writeFileSync(path.join(out, 'cases.bin'), Buffer.concat(bufs));
fs.writeFileSync(path.join(out, 'names.txt'), names.join('\n') + '\n');
fs.writeFileSync(path.join(out, 'ref_g3e.txt'), g.join('\n') + '\n');
fs.writeFileSync(path.join(out, 'ref_tt.txt'), t.join('\n') + '\n');
console.log(`${cases.length} cases (${nmsg} oasst messages, ${crafted.length} crafted)`);
