// rlhf.c feedback app. Served from the binary; no network access beyond this
// server. Text from the model, from comments and from the server is only ever
// inserted with textContent / createTextNode, never parsed as HTML.
'use strict';

let csrf = '';
let me = null;

const $ = (id) => document.getElementById(id);

function el(tag, props, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of kids) e.append(typeof c === 'string' ? document.createTextNode(c) : c);
  return e;
}

function status(msg, isError) {
  const s = $('status');
  s.textContent = msg;
  s.className = isError ? 'error' : '';
}

async function post(path, body) {
  const r = await fetch(path, {
    method: 'POST', credentials: 'same-origin',
    headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf},
    body: JSON.stringify(body),
  });
  let data = null;
  try { data = await r.json(); } catch (e) { data = {error: 'bad response'}; }
  return {status: r.status, data};
}

async function loadMe() {
  const r = await fetch('/api/me', {credentials: 'same-origin'});
  if (r.status === 401) { location.href = '/'; return false; }
  me = await r.json();
  csrf = me.csrf;
  $('nav').hidden = false;
  $('who').textContent = me.name + ' (' + me.role + ')';
  $('nav-operator').hidden = me.role !== 'operator';
  $('dummy-banner').hidden = !me.dummy;
  $('logout').onclick = async () => { await post('/api/logout', {}); location.href = '/'; };
  return true;
}

// ---- login ------------------------------------------------------------------
function initLogin() {
  $('login-form').onsubmit = async (ev) => {
    ev.preventDefault();
    const token = $('token').value.trim();
    const r = await fetch('/api/login', {
      method: 'POST', credentials: 'same-origin',
      headers: {'Content-Type': 'application/json'},
      body: JSON.stringify(token ? {token} : {}),
    });
    const data = await r.json().catch(() => ({error: 'bad response'}));
    if (r.status === 200) { location.href = '/chat'; return; }
    status('Login failed: ' + (data.error || r.status), true);
  };
}

// ---- feedback controls (thumbs + comment) -----------------------------------------
function thumbsControls(genId) {
  const comment = el('input', {type: 'text', placeholder: 'Optional comment', maxLength: 4000, class: 'comment'});
  const up = el('button', {type: 'button', class: 'thumb-up', title: 'Good answer'}, '▲ good');
  const down = el('button', {type: 'button', class: 'thumb-down', title: 'Bad answer'}, '▼ bad');
  const note = el('span', {class: 'tag'});
  const send = async (thumb, btn) => {
    up.disabled = down.disabled = true;
    const r = await post('/api/thumbs', {generation: genId, thumb, comment: comment.value || undefined});
    if (r.status === 201) { btn.classList.add('sent'); note.textContent = 'saved'; comment.disabled = true; }
    else { up.disabled = down.disabled = false; note.textContent = 'not saved: ' + (r.data.error || r.status); }
  };
  up.onclick = () => send(1, up);
  down.onclick = () => send(-1, down);
  return el('div', {class: 'feedback', 'data-generation': String(genId)}, up, down, comment, note);
}

// Reads a server-sent event stream from a fetch response, calling onEvent(name, data).
async function readEvents(resp, onEvent) {
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buf += dec.decode(value, {stream: true});
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let name = 'message', data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) name = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      try { onEvent(name, JSON.parse(data)); } catch (e) { /* ignore a malformed event */ }
    }
  }
}

// ---- chat ----------------------------------------------------------------------------
function initChat() {
  let history = [];
  let streamId = null;
  const log = $('log');
  $('new-chat').onclick = () => { history = []; log.replaceChildren(); };
  $('stop').onclick = async () => { if (streamId) await post('/api/stop', {stream: streamId}); };
  $('chat-form').onsubmit = async (ev) => {
    ev.preventDefault();
    const text = $('prompt').value;
    if (!text.trim()) return;
    $('prompt').value = '';
    history.push({role: 'user', content: text});
    log.append(el('div', {class: 'msg user'}, el('div', {class: 'text'}, text)));
    const out = el('div', {class: 'text'});
    const bubble = el('div', {class: 'msg assistant streaming'}, out);
    log.append(bubble);
    $('send').disabled = true;
    $('stop').disabled = false;
    status('generating…');
    let final = null;
    try {
      const resp = await fetch('/api/generate', {
        method: 'POST', credentials: 'same-origin',
        headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf},
        body: JSON.stringify({messages: history}),
      });
      if (resp.status !== 200) {
        const d = await resp.json().catch(() => ({}));
        throw new Error(d.error || ('HTTP ' + resp.status));
      }
      await readEvents(resp, (name, d) => {
        if (name === 'start') { streamId = d.stream; if (d.dummy) bubble.append(el('div', {class: 'tag'}, 'dummy generator')); }
        else if (name === 'token') out.textContent += d.text;
        else if (name === 'done') final = d;
        else if (name === 'error') status('error: ' + d.error, true);
      });
    } catch (e) {
      status('error: ' + e.message, true);
    }
    streamId = null;
    $('send').disabled = false;
    $('stop').disabled = true;
    bubble.classList.remove('streaming');
    if (final) {
      out.textContent = final.text;
      bubble.dataset.generation = String(final.id);
      if (final.stopped) bubble.append(el('div', {class: 'tag'}, 'stopped'));
      bubble.append(thumbsControls(final.id));
      history.push({role: 'assistant', content: final.text});
      status('done');
    } else {
      history.pop();
    }
  };
}

// ---- compare ---------------------------------------------------------------------------
function initCompare() {
  let items = null;
  $('cmp-form').onsubmit = async (ev) => {
    ev.preventDefault();
    const prompt = $('cmp-prompt').value;
    if (!prompt.trim()) return;
    status('generating…');
    const r = await post('/api/compare', {prompt, k: 2});
    if (r.status !== 200) { status('error: ' + r.data.error, true); return; }
    items = r.data.items;
    $('cmp-a').textContent = items[0].text;
    $('cmp-b').textContent = items[1].text;
    $('cmp-comment').value = '';
    for (const b of document.querySelectorAll('.choice')) { b.disabled = false; b.classList.remove('sent'); }
    $('cmp').hidden = false;
    status('Which answer is better?');
  };
  for (const b of document.querySelectorAll('.choice')) {
    b.onclick = async () => {
      if (!items) return;
      for (const x of document.querySelectorAll('.choice')) x.disabled = true;
      const r = await post('/api/pair', {generations: [items[0].id, items[1].id], choice: b.dataset.choice,
                                         comment: $('cmp-comment').value || undefined});
      if (r.status === 201) { b.classList.add('sent'); status('saved'); items = null; }
      else { status('not saved: ' + r.data.error, true); for (const x of document.querySelectorAll('.choice')) x.disabled = false; }
    };
  }
}

// ---- rank ---------------------------------------------------------------------------------
function initRank() {
  let items = null;
  const list = $('rank-list');
  const move = (li, dir) => {
    const other = dir < 0 ? li.previousElementSibling : li.nextElementSibling;
    if (!other) return;
    if (dir < 0) list.insertBefore(li, other); else list.insertBefore(other, li);
  };
  $('rank-form').onsubmit = async (ev) => {
    ev.preventDefault();
    const prompt = $('rank-prompt').value;
    if (!prompt.trim()) return;
    status('generating…');
    const r = await post('/api/compare', {prompt, k: Number($('rank-k').value)});
    if (r.status !== 200) { status('error: ' + r.data.error, true); return; }
    items = r.data.items;
    list.replaceChildren();
    items.forEach((it, pos) => {
      const up = el('button', {type: 'button', class: 'up', title: 'Move up'}, '↑');
      const down = el('button', {type: 'button', class: 'down', title: 'Move down'}, '↓');
      const li = el('li', {'data-pos': String(pos), 'data-label': it.label},
                    el('b', {}, it.label + ': '), el('span', {class: 'text'}, it.text), el('div', {class: 'row'}, up, down));
      up.onclick = () => move(li, -1);
      down.onclick = () => move(li, 1);
      list.append(li);
    });
    $('rank-submit').disabled = false;
    $('rank').hidden = false;
    status('Order the answers, best first.');
  };
  $('rank-submit').onclick = async () => {
    if (!items) return;
    const order = [...list.children].map((li) => Number(li.dataset.pos));
    $('rank-submit').disabled = true;
    const r = await post('/api/ranking', {generations: items.map((it) => it.id), order,
                                          comment: $('rank-comment').value || undefined});
    if (r.status === 201) { status('saved'); items = null; }
    else { status('not saved: ' + r.data.error, true); $('rank-submit').disabled = false; }
  };
}

// ---- operator ---------------------------------------------------------------------------------
async function initOperator() {
  if (me.role !== 'operator') { status('This page is for operators.', true); return; }
  const r = await fetch('/api/stats', {credentials: 'same-origin'});
  if (r.status !== 200) { status('cannot load statistics', true); return; }
  const st = await r.json();
  $('op-total').textContent = String(st.total);
  const tb = $('op-agreement').tBodies[0];
  for (const kind of ['pair', 'thumbs']) {
    const a = st.agreement[kind];
    tb.append(el('tr', {}, el('td', {}, kind), el('td', {}, String(a.items)), el('td', {}, String(a.annotator_pairs)),
                 el('td', {}, String(a.agreeing_pairs)), el('td', {}, a.rate === null ? '–' : (100 * a.rate).toFixed(1) + ' %')));
  }
  const ta = $('op-annotators').tBodies[0];
  for (const row of st.by_annotator) ta.append(el('tr', {}, el('td', {}, row.annotator), el('td', {}, String(row.count))));
  for (const by of ['kind', 'annotator', 'group', 'day']) $('chart-' + by).src = '/api/chart.svg?by=' + by;
  $('op').hidden = false;
  // Training runs: one chart per run, a select for the metric.
  const rr = await fetch('/api/runs', {credentials: 'same-origin'});
  const runs = rr.status === 200 ? (await rr.json()).runs : [];
  if (runs.length) $('runs').replaceChildren();
  for (const run of runs) {
    const img = el('img', {alt: run.name, class: 'run-chart'});
    const sel = el('select', {class: 'run-key'});
    for (const key of run.keys) sel.append(el('option', {value: key}, key));
    const pref = ['loss', 'reward', 'kl'].find((key) => run.keys.includes(key));
    if (pref) sel.value = pref;
    const show = () => { img.src = '/api/run.svg?run=' + run.index + '&key=' + encodeURIComponent(sel.value); };
    sel.onchange = show;
    if (run.keys.length) show();
    $('runs').append(el('div', {class: 'run'}, el('div', {class: 'row'}, el('b', {}, run.name), sel), img));
  }
}

// ---- profile -------------------------------------------------------------------------------------
async function initProfile() {
  const r = await fetch('/api/profile', {credentials: 'same-origin'});
  const p = await r.json();
  const box = $('questions');
  if (!p.questions.length) box.append(el('p', {class: 'hint'}, 'The operator has not configured any questions.'));
  for (const q of p.questions) {
    let input;
    if (q.choices) {
      input = el('select', {id: 'q-' + q.key, 'data-key': q.key}, el('option', {value: ''}, '(prefer not to say)'));
      for (const c of q.choices) input.append(el('option', {value: c}, c));
    } else {
      input = el('input', {type: 'text', id: 'q-' + q.key, 'data-key': q.key, maxLength: 200});
    }
    if (p.answers[q.key] !== undefined) input.value = p.answers[q.key];
    box.append(el('div', {class: 'row'}, el('label', {htmlFor: 'q-' + q.key}, q.text), input));
  }
  $('consent').checked = p.consent;
  $('profile-form').onsubmit = async (ev) => {
    ev.preventDefault();
    const answers = {};
    for (const i of box.querySelectorAll('[data-key]')) if (i.value) answers[i.dataset.key] = i.value;
    const consent = $('consent').checked;
    const res = await post('/api/profile', consent ? {consent, answers} : {consent: false});
    status(res.status === 200 ? (consent ? 'saved' : 'nothing stored (no consent)') : 'not saved: ' + res.data.error, res.status !== 200);
  };
  $('profile-withdraw').onclick = async () => {
    const res = await post('/api/profile', {consent: false});
    if (res.status === 200) { $('consent').checked = false; for (const i of box.querySelectorAll('[data-key]')) i.value = ''; status('answers deleted'); }
  };
}

document.addEventListener('DOMContentLoaded', async () => {
  const view = document.body.dataset.view;
  if (view === 'login') { initLogin(); return; }
  if (!(await loadMe())) return;
  if (view === 'chat') initChat();
  else if (view === 'compare') initCompare();
  else if (view === 'rank') initRank();
  else if (view === 'operator') initOperator();
  else if (view === 'profile') initProfile();
});
