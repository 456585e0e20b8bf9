// Follows report_page.HELPERS (BUSY, el, badge).
(() => {
  'use strict';
  const DATA = JSON.parse(document.getElementById('compare').textContent);
  const COLS = DATA.columns;
  const LINES = DATA.lines;
  const STORE = 'batchgen-compare/' + DATA.identity;
  const PAGE = 30;
  const VERDICTS = new Map([['tie', 'tie'], ['none', 'none is good']]);
  const column = new Map(COLS.map((c, i) => [c.id, i]));
  const lines = document.getElementById('lines');
  const more = document.getElementById('more');
  const nodes = [];
  let current = 0;

  // A relative path, quoted part by part; an object's URL (s3://...) keeps its scheme.
  const href = (file) => (/^[a-z][a-z0-9+.-]*:\/\//i.test(file)
    ? encodeURI(file) : file.split('/').map(encodeURIComponent).join('/'));
  document.documentElement.style.setProperty('--cols', String(COLS.length));

  // -- picks: line id -> a column id, 'tie' or 'none'; kept per batch in localStorage --------
  const valid = (line, choice) => VERDICTS.has(choice) ||
    (column.has(choice) && line.cells[column.get(choice)] !== null);
  const picks = (() => {
    let stored = {};
    try { stored = JSON.parse(localStorage.getItem(STORE) || '{}') || {}; } catch (e) { /* none */ }
    const kept = new Map();
    for (const line of LINES) {
      if (Object.prototype.hasOwnProperty.call(stored, line.id) && valid(line, stored[line.id])) {
        kept.set(line.id, stored[line.id]);
      }
    }
    return kept;
  })();
  function save() {
    try {
      localStorage.setItem(STORE, JSON.stringify(Object.fromEntries(picks)));
    } catch (e) { /* storage off (some browsers on file: URLs): picks last this visit */ }
  }

  function choose(i, choice) {
    const line = LINES[i];
    if (!line) return;
    if (choice === null) picks.delete(line.id);
    else if (valid(line, choice)) picks.set(line.id, choice);
    else return;
    save();
    paint(i);
    score();
  }

  function paint(i) {
    const node = nodes[i];
    if (!node) return;
    const choice = picks.get(LINES[i].id);
    for (const cell of node.querySelectorAll('.cell')) {
      cell.classList.toggle('won', COLS[Number(cell.dataset.col)].id === choice);
    }
    node.querySelector('.verdict').textContent = VERDICTS.get(choice) || '';
  }

  function score() {
    const counts = new Map([...COLS.map((c) => [c.id, 0]), ['tie', 0], ['none', 0]]);
    for (const choice of picks.values()) counts.set(choice, counts.get(choice) + 1);
    const board = document.getElementById('score');
    board.replaceChildren();
    COLS.forEach((c, i) => {
      const item = el('span', 'chip');
      item.title = c.endpoint;
      if (i < 9) item.append(el('span', 'num', i + 1));
      item.append(c.label, el('b', null, counts.get(c.id)));
      board.append(item);
    });
    for (const [choice, text] of VERDICTS) {
      const item = el('span', 'chip', text);
      item.append(el('b', null, counts.get(choice)));
      board.append(item);
    }
    document.getElementById('picked').textContent =
      picks.size + ' of ' + LINES.length + ' rows picked';
  }

  // -- export: the picks as CSV, downloaded from a Blob (works from file:) --------------------
  const TRIGGERS = '=+-@\t\r';
  const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
  function csvCell(value) {
    let text = value === null || value === undefined ? '' : String(value);
    // As manifest.csv does: a cell a spreadsheet would run as a formula gets a leading '.
    if (text && TRIGGERS.includes(text[0]) && !NUMBER.test(text)) text = "'" + text;
    return /[",\r\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }
  function csv() {
    const rows = [['row', 'prompt', 'choice', 'endpoint', 'key', 'video_path']];
    for (const line of LINES) {
      const choice = picks.get(line.id);
      if (choice === undefined) continue;
      if (VERDICTS.has(choice)) {
        rows.push([line.row, line.prompt, choice, '', '', '']);
        continue;
      }
      const c = column.get(choice);
      const cell = line.cells[c];
      rows.push([cell.row, line.prompt, COLS[c].label, COLS[c].endpoint, cell.key, cell.file]);
    }
    return '\ufeff' + rows.map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
  }
  document.getElementById('export').addEventListener('click', () => {
    const link = document.getElementById('download');
    if (link.href) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(new Blob([csv()], { type: 'text/csv;charset=utf-8' }));
    link.download = 'picks-' + DATA.folder + '.csv';
    link.click();
  });

  // -- synchronized play: what one video of a line does, the others follow --------------------
  // A change we make ourselves is marked, so the event it fires is not followed back.
  const driven = new WeakMap();
  const drive = (video, kind) => {
    const marks = driven.get(video) || new Set();
    marks.add(kind);
    driven.set(video, marks);
  };
  const ours = (video, kind) => {
    const marks = driven.get(video);
    return Boolean(marks && marks.delete(kind));
  };
  const seek = (video, time) => {
    const end = Number.isFinite(video.duration) ? video.duration : time;
    const target = Math.min(time, end);
    if (Math.abs(video.currentTime - target) < 0.01) return;
    drive(video, 'seeked');
    video.currentTime = target;
  };
  const start = (video) => {
    if (!video.paused) return;
    drive(video, 'play');
    video.play().catch(() => ours(video, 'play'));
  };
  const stop = (video) => {
    if (video.paused) return;
    drive(video, 'pause');
    video.pause();
  };
  function follow(videos) {
    for (const video of videos) {
      const others = () => videos.filter((o) => o !== video);
      video.addEventListener('play', () => {
        if (ours(video, 'play')) return;
        for (const o of others()) { seek(o, video.currentTime); start(o); }
      });
      video.addEventListener('pause', () => {
        // The shortest video ending must not stop the others.
        if (ours(video, 'pause') || video.ended) return;
        for (const o of others()) stop(o);
      });
      video.addEventListener('seeked', () => {
        if (ours(video, 'seeked')) return;
        for (const o of others()) seek(o, video.currentTime);
      });
    }
  }
  const videosOf = (i) => (nodes[i] ? [...nodes[i].querySelectorAll('video')] : []);

  function playRow(i) {
    const videos = videosOf(i);
    if (!videos.length) return;
    if (videos.some((v) => !v.paused)) {
      videos.forEach(stop);
      return;
    }
    for (const v of document.querySelectorAll('video')) if (!videos.includes(v)) stop(v);
    const lead = videos[0];
    const at = videos.every((v) => v.ended) || lead.ended ? 0 : lead.currentTime;
    for (const v of videos) { seek(v, at); start(v); }
  }

  // -- drawing ----------------------------------------------------------------------------
  function heads() {
    const row = document.getElementById('heads');
    row.append(el('div', 'colhead', 'prompt'));
    COLS.forEach((c, i) => {
      const head = el('div', 'colhead');
      head.title = [c.endpoint, ...c.values.map(([p, v]) => p + '=' + v)].join('\n');
      if (i < 9) head.append(el('span', 'num', i + 1));
      head.append(el('b', null, c.label), el('div', null, c.stats));
      row.append(head);
    });
  }

  function cellNode(cell, c, i) {
    if (cell === null) {
      const node = el('div', 'cell absent', 'no job');
      node.dataset.col = c;
      return node;
    }
    const node = el('div', 'cell');
    node.dataset.col = c;
    const media = el('div', 'media');
    if (cell.file) {
      const video = el('video');
      video.controls = true; video.preload = 'metadata'; video.muted = true;
      video.playsInline = true;
      video.src = href(cell.file);
      media.append(video);
    } else {
      media.append(el('div', 'placeholder', cell.status === 'done' ? 'no file' : cell.status));
    }
    const info = el('div', 'info');
    const head = el('div', 'head');
    const pick = el('button', 'pick', c < 9 ? String(c + 1) : 'pick');
    pick.type = 'button';
    pick.title = 'pick ' + COLS[c].label + ' as the winner' + (c < 9 ? ' (key ' + (c + 1) + ')' : '');
    pick.addEventListener('click', () => { select(i, false); choose(i, COLS[c].id); });
    head.append(pick);
    if (cell.status !== 'done') head.append(el('span', badge(cell.status), cell.status));
    head.append(el('span', null, cell.money));
    if (cell.latency) head.append(el('span', null, cell.latency));
    if (cell.attempts > 1) head.append(el('span', null, cell.attempts + ' attempts'));
    info.append(head);
    if (cell.error) info.append(el('p', 'error', cell.error));
    node.append(media, info);
    return node;
  }

  function lineNode(line, i) {
    const node = el('section', 'line');
    node.dataset.line = line.id;
    node.dataset.row = line.row;
    const lead = el('div', 'lead');
    const head = el('div', 'head');
    head.append(el('span', null, (line.rows.length > 1 ? 'rows ' : 'row ') + line.rows.join(', ')));
    head.append(el('span', 'badge b-flag verdict'));
    const play = el('button', 'chip', '▶ play row');
    play.type = 'button';
    play.addEventListener('click', () => { select(i, false); playRow(i); });
    head.append(play);
    const prompt = el('p', 'prompt', line.prompt);
    prompt.title = 'click to expand';
    prompt.addEventListener('click', () => prompt.classList.toggle('open'));
    const params = el('div', 'params');
    for (const [name, value] of line.params) params.append(el('span', null, name + ': ' + value));
    lead.append(head, prompt, params);
    node.append(lead);
    line.cells.forEach((cell, c) => node.append(cellNode(cell, c, i)));
    follow([...node.querySelectorAll('video')]);
    node.addEventListener('focusin', () => select(i, false));
    node.addEventListener('pointerdown', () => select(i, false));
    return node;
  }

  function renderMore() {
    const from = nodes.length;
    const end = Math.min(LINES.length, from + PAGE);
    const batch = document.createDocumentFragment();
    for (let i = from; i < end; i++) {
      nodes.push(lineNode(LINES[i], i));
      batch.append(nodes[i]);
    }
    lines.append(batch);
    for (let i = from; i < end; i++) paint(i);
    more.hidden = nodes.length >= LINES.length;
  }

  function select(i, scroll = true) {
    if (!LINES.length) return;
    const next = Math.max(0, Math.min(LINES.length - 1, i));
    while (nodes.length <= next) renderMore();
    if (nodes[current]) nodes[current].classList.remove('current');
    current = next;
    nodes[current].classList.add('current');
    if (scroll) nodes[current].scrollIntoView({ block: 'nearest' });
  }

  // -- keys -------------------------------------------------------------------------------
  window.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const target = e.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) {
      return;
    }
    const key = e.key;
    if (key === 'j' || key === 'ArrowDown') select(current + 1);
    else if (key === 'k' || key === 'ArrowUp') select(current - 1);
    else if (/^[1-9]$/.test(key) && Number(key) <= COLS.length) {
      choose(current, COLS[Number(key) - 1].id);
    } else if (key === 't') choose(current, 'tie');
    else if (key === 'n') choose(current, 'none');
    else if (key === 'x' || key === 'Backspace' || key === 'Delete') choose(current, null);
    else if (key === ' ') playRow(current);
    else return;
    // Ours, not the focused video's or button's (space would toggle only that one).
    e.preventDefault();
    e.stopPropagation();
  }, true);

  heads();
  more.addEventListener('click', renderMore);
  if ('IntersectionObserver' in window) {
    new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) renderMore();
    }, { rootMargin: '600px' }).observe(more);
  }
  renderMore();
  select(0, false);
  score();
})();
