"""The fixed parts of ``report.html``: page skeleton, inline CSS and inline JS.

Everything the page needs is in the one file: no CDN, no web fonts, no network at all, so it
opens offline from the output folder. The gallery is drawn by the script from a JSON blob
(``<script type="application/json" id="jobs">``), a page of cards at a time, so reports of
thousands of jobs stay responsive. The script only ever sets ``textContent`` and attributes,
never ``innerHTML``, so prompts holding markup are shown as text.
"""

from __future__ import annotations

CSS = """
:root { --bg:#f6f7f9; --card:#fff; --ink:#1d2330; --mute:#667085; --line:#e4e7ec;
  --done:#12805c; --failed:#c4320a; --cancelled:#667085; --busy:#2563eb; --pending:#98a2b3;
  --accent:#4f46e5; color-scheme: light dark; }
@media (prefers-color-scheme: dark) { :root { --bg:#111318; --card:#1b1e26; --ink:#e6e8ee;
  --mute:#98a2b3; --line:#2b303b; } }
* { box-sizing: border-box; }
[hidden] { display:none !important; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; }
header, main { max-width:1400px; margin:0 auto; padding:16px 24px; }
header h1 { font-size:20px; margin:8px 0 2px; }
.views { display:flex; gap:4px; font-size:13px; }
.views a, .views b { padding:3px 10px; border-radius:6px; border:1px solid var(--line); }
.views b { background:var(--accent); border-color:var(--accent); color:#fff; }
.views a { color:var(--ink); background:var(--card); text-decoration:none; }
.sub { color:var(--mute); font-size:13px; overflow-wrap:anywhere; }
.summary { display:grid; grid-template-columns:minmax(280px,1fr) minmax(300px,1.2fr); gap:16px; }
@media (max-width:800px) { .summary { grid-template-columns:1fr; } }
.panel { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:14px; }
.panel h2 { font-size:13px; text-transform:uppercase; letter-spacing:.04em; color:var(--mute);
  margin:0 0 10px; }
.tiles { display:grid; grid-template-columns:repeat(auto-fill,minmax(110px,1fr)); gap:10px; }
.tile b { display:block; font-size:20px; font-variant-numeric:tabular-nums; }
.tile span { color:var(--mute); font-size:12px; }
.bar { display:flex; height:10px; border-radius:5px; overflow:hidden; margin:14px 0 6px;
  background:var(--line); }
.bar i { display:block; height:100%; }
.legend { display:flex; flex-wrap:wrap; gap:4px 12px; font-size:12px; color:var(--mute); }
.legend i { display:inline-block; width:9px; height:9px; border-radius:2px; margin-right:4px; }
.hist { width:100%; height:auto; }
.hist rect { fill:var(--accent); opacity:.85; } .hist text { fill:var(--mute); font-size:10px; }
.hist line { stroke:var(--line); }
table.fail { width:100%; border-collapse:collapse; font-size:13px; margin-top:12px; }
table.fail td { border-top:1px solid var(--line); padding:5px 4px; vertical-align:top; }
table.fail td.n { text-align:right; font-variant-numeric:tabular-nums; width:3em; }
.filters { position:sticky; top:0; z-index:2; background:var(--bg); padding:10px 0;
  display:flex; flex-wrap:wrap; gap:8px; align-items:center; border-bottom:1px solid var(--line); }
.chip { border:1px solid var(--line); background:var(--card); color:var(--ink); border-radius:999px;
  padding:4px 10px; font:inherit; font-size:12px; cursor:pointer; }
.chip[aria-pressed=true] { background:var(--accent); border-color:var(--accent); color:#fff; }
table.fail tr[data-fail] { cursor:pointer; }
table.fail tr[data-fail]:hover, table.fail tr[aria-pressed=true] { background:var(--bg); }
.filters select, .filters input { font:inherit; font-size:12px; padding:4px 6px;
  border:1px solid var(--line); border-radius:6px; background:var(--card); color:var(--ink); }
.filters input { min-width:200px; }
#shown { color:var(--mute); font-size:12px; margin-left:auto; }
.grid { display:grid; grid-template-columns:repeat(auto-fill,minmax(260px,1fr)); gap:14px;
  margin-top:14px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; overflow:hidden;
  content-visibility:auto; contain-intrinsic-size:auto 380px; display:flex; flex-direction:column; }
.media { aspect-ratio:16/9; background:#0b0d12; display:flex; align-items:center;
  justify-content:center; position:relative; }
.media video { position:absolute; inset:0; width:100%; height:100%; object-fit:contain;
  background:#000; }
.placeholder { color:#aab1bf; font-size:13px; letter-spacing:.03em; }
.body { padding:10px 12px 12px; display:flex; flex-direction:column; gap:6px; }
.head { display:flex; gap:8px; align-items:center; font-size:12px; color:var(--mute); }
.head .key { margin-left:auto; font-family:ui-monospace,SFMono-Regular,Menlo,monospace; }
.badge { color:#fff; border-radius:4px; padding:1px 6px; font-size:11px; font-weight:600; }
.b-done { background:var(--done); } .b-failed { background:var(--failed); }
.b-cancelled { background:var(--cancelled); } .b-pending { background:var(--pending); }
.b-busy { background:var(--busy); } .b-flag { background:#b54708; }
.prompt { margin:0; display:-webkit-box; -webkit-line-clamp:4; -webkit-box-orient:vertical;
  overflow:hidden; overflow-wrap:anywhere; }
.prompt.open { -webkit-line-clamp:unset; }
.error { margin:0; color:var(--failed); font-size:12px; overflow-wrap:anywhere;
  white-space:pre-wrap; max-height:8em; overflow:auto; }
.params { display:flex; flex-wrap:wrap; gap:4px; margin:0; }
.params span { background:var(--bg); border:1px solid var(--line); border-radius:4px;
  padding:0 5px; font-size:11px; color:var(--mute); max-width:100%; overflow:hidden;
  text-overflow:ellipsis; white-space:nowrap; }
.inputs { display:flex; gap:4px; }
.inputs img { height:48px; border-radius:4px; border:1px solid var(--line); }
.foot { font-size:11px; color:var(--mute); display:flex; gap:10px; }
.foot a { color:inherit; }
#more { display:block; margin:18px auto 40px; }
.empty { color:var(--mute); padding:40px; text-align:center; }
"""

# Shared by report.html and compare.html: each page's script follows it.
HELPERS = """
const BUSY = new Set(['submitting', 'submit_uncertain', 'queued', 'running', 'completed',
                      'downloading', 'cancelling']);
const el = (tag, cls, text) => {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
};
const badge = (s) => 'badge b-' + (BUSY.has(s) ? 'busy' : s);
"""

JS = (
    HELPERS
    + """
(() => {
  'use strict';
  const DATA = JSON.parse(document.getElementById('jobs').textContent);
  const PAGE = 48;
  const grid = document.getElementById('grid');
  const more = document.getElementById('more');
  const shown = document.getElementById('shown');
  const state = { status: '', fail: null, flag: '', filters: {}, q: '' };
  let list = DATA.jobs, done = 0;

  const FLAGS = { dup: 'possibly duplicate', orphan: 'no longer in the input' };

  function card(job) {
    const node = el('article', 'card');
    const media = el('div', 'media');
    if (job.video) {
      const video = el('video');
      video.controls = true; video.preload = 'metadata'; video.playsInline = true;
      video.src = job.video;
      media.append(video);
    } else {
      media.append(el('div', 'placeholder', job.status === 'done' ? 'no file' : job.status));
    }
    const body = el('div', 'body');
    const head = el('div', 'head');
    head.append(el('span', badge(job.status), job.status));
    for (const flag of Object.keys(FLAGS)) {
      if (job[flag]) head.append(el('span', 'badge b-flag', FLAGS[flag]));
    }
    head.append(el('span', null, 'row ' + job.row), el('span', 'key', job.key));
    const prompt = el('p', 'prompt', job.prompt);
    prompt.title = 'click to expand';
    prompt.addEventListener('click', () => prompt.classList.toggle('open'));
    body.append(head, prompt);
    if (job.error) body.append(el('p', 'error', job.error));
    const params = el('div', 'params');
    for (const [name, value] of job.params) {
      const item = el('span', null, name + ': ' + value);
      item.title = name + ': ' + value;
      params.append(item);
    }
    body.append(params);
    if (job.inputs.length) {  // the input images, from the files the jobs were made from
      const strip = el('div', 'inputs');
      for (const src of job.inputs) {
        const img = el('img'); img.src = src; img.loading = 'lazy'; img.alt = 'input image';
        strip.append(img);
      }
      body.append(strip);
    }
    const foot = el('div', 'foot');
    if (job.latency !== null) foot.append(el('span', null, job.latency));
    if (job.video) {
      const link = el('a', null, 'open file');
      link.href = job.video; foot.append(link);
    }
    if (job.attempts > 1) foot.append(el('span', null, job.attempts + ' attempts'));
    body.append(foot);
    node.append(media, body);
    return node;
  }

  const filtering = () => Boolean(state.status || state.fail !== null || state.flag || state.q ||
    Object.values(state.filters).some((v) => v !== ''));

  function matches(job) {
    if (state.status && job.status !== state.status) return false;
    if (state.fail !== null && job.fail !== state.fail) return false;
    if (state.flag && !job[state.flag]) return false;
    for (const [name, value] of Object.entries(state.filters)) {
      if (value !== '' && job.values[name] !== value) return false;
    }
    return !state.q || job.search.includes(state.q);
  }

  function renderMore() {
    const end = Math.min(list.length, done + PAGE);
    const batch = document.createDocumentFragment();
    for (let i = done; i < end; i++) batch.append(card(list[i]));
    grid.append(batch);
    done = end;
    more.hidden = done >= list.length;
    if (!list.length) grid.append(el('div', 'empty', 'No job matches these filters.'));
  }

  // The filters live in the fragment (#status=failed&fail=0&flag=dup&q=sea&p.duration=5),
  // so a filtered view can be linked, reloaded, or opened straight from a test.
  function toHash() {
    const params = new URLSearchParams();
    if (state.status) params.set('status', state.status);
    if (state.fail !== null) params.set('fail', String(state.fail));
    if (state.flag) params.set('flag', state.flag);
    if (state.q) params.set('q', state.q);
    for (const [name, value] of Object.entries(state.filters)) {
      if (value !== '') params.set('p.' + name, value);
    }
    const hash = params.toString();
    try {
      history.replaceState(null, '', hash ? '#' + hash : location.pathname + location.search);
    } catch (e) { /* some browsers refuse on file: URLs; the view still filters */ }
  }

  function fromHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    state.status = DATA.statuses.includes(params.get('status')) ? params.get('status') : '';
    const fail = Number.parseInt(params.get('fail') || '', 10);
    state.fail = Number.isInteger(fail) ? fail : null;
    state.flag = FLAGS[params.get('flag')] ? params.get('flag') : '';
    state.q = (params.get('q') || '').toLowerCase();
    state.filters = {};
    for (const f of DATA.filters) state.filters[f.name] = params.get('p.' + f.name) || '';
  }

  const bar = document.getElementById('filters');
  const chips = [];
  const chip = (label, pressed, onClick) => {
    const node = el('button', 'chip', label);
    node.type = 'button';
    node.addEventListener('click', onClick);
    chips.push([node, pressed]);
    bar.append(node);
  };
  const selects = [];
  const search = el('input');

  function apply(write = true) {
    for (const [node, pressed] of chips) node.setAttribute('aria-pressed', String(pressed()));
    for (const [select, name] of selects) select.value = state.filters[name] || '';
    if (search.value.toLowerCase() !== state.q) search.value = state.q;
    for (const row of document.querySelectorAll('tr[data-fail]')) {
      row.setAttribute('aria-pressed', String(Number(row.dataset.fail) === state.fail));
    }
    list = DATA.jobs.filter(matches);
    grid.replaceChildren();
    done = 0;
    renderMore();
    shown.textContent = filtering()
      ? 'showing ' + list.length.toLocaleString() + ' of ' + DATA.jobs.length.toLocaleString() +
        ' jobs'
      : DATA.jobs.length.toLocaleString() + ' jobs';
    clear.hidden = !filtering();
    if (write) toHash();
  }

  for (const s of DATA.statuses) {
    chip(s + ' ' + DATA.counts[s].toLocaleString(), () => state.status === s, () => {
      state.status = state.status === s ? '' : s;
      state.fail = null;
      apply();
    });
  }
  for (const [flag, label] of Object.entries(FLAGS)) {
    if (!DATA.flags[flag]) continue;
    chip(label + ' ' + DATA.flags[flag].toLocaleString(), () => state.flag === flag, () => {
      state.flag = state.flag === flag ? '' : flag;
      apply();
    });
  }
  for (const row of document.querySelectorAll('tr[data-fail]')) {
    const pick = () => {
      const i = Number(row.dataset.fail);
      state.fail = state.fail === i ? null : i;
      state.status = state.fail === null ? '' : 'failed';
      apply();
      bar.scrollIntoView({ block: 'start' });
    };
    row.addEventListener('click', pick);
    row.addEventListener('keydown', (e) => { if (e.key === 'Enter') pick(); });
  }
  for (const f of DATA.filters) {
    const select = el('select');
    select.setAttribute('aria-label', f.name);
    select.append(new Option(f.name + ': any', ''));
    for (const v of f.values) select.append(new Option(f.name + ': ' + v, v));
    select.addEventListener('change', () => { state.filters[f.name] = select.value; apply(); });
    selects.push([select, f.name]);
    bar.append(select);
  }
  const clear = el('button', 'chip', 'clear filters');
  clear.type = 'button';
  clear.addEventListener('click', () => {
    Object.assign(state, { status: '', fail: null, flag: '', q: '' });
    for (const name of Object.keys(state.filters)) state.filters[name] = '';
    apply();
  });
  search.type = 'search'; search.placeholder = 'search prompts';
  search.addEventListener('input', () => { state.q = search.value.toLowerCase(); apply(); });
  bar.append(search, clear, shown);
  more.addEventListener('click', renderMore);
  if ('IntersectionObserver' in window) {
    new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) renderMore();
    }, { rootMargin: '600px' }).observe(more);
  }
  window.addEventListener('hashchange', () => { fromHash(); apply(false); });
  fromHash();
  apply(false);
})();
"""
)

# Both pages start so; ``{title}`` and ``{css}`` are filled with the rest.
HEAD = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
"""

PAGE = (
    HEAD
    + """<body>
<header>
{views}
<h1>{title}</h1>
<div class="sub">{subtitle}</div>
<div class="sub" id="run">{run}</div>
<div class="sub" id="common">{common}</div>
</header>
<main>
<section class="summary">{summary}</section>
<nav class="filters" id="filters" aria-label="filters"><span id="shown"></span></nav>
<noscript><p class="empty">The gallery needs JavaScript; manifest.csv lists every job.</p>
</noscript>
<section class="grid" id="grid"></section>
<button class="chip" id="more" type="button" hidden>show more</button>
</main>
<script type="application/json" id="jobs">{data}</script>
<script>{js}</script>
</body>
</html>
"""
)
