// The engine view (static/engine.html): reads GET /engine/events (server-sent
// events: one `config`, then sampled `step` records, see src/core/engine_view.ts)
// with fetch, so that the API key can go in a header, and draws the scheduler's
// step and the KV cache's blocks. Every text from the server goes in through
// textContent, never as markup.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const KEY_STORE = 'vllm-ts.apiKey';
  const STATES = ['free', 'cached', 'used', 'prefix_hit', 'shared'];
  const HISTORY = 300;
  const TIMELINE_COLS = 60;

  let config = null;
  const history = [];
  /** Index into history of the record on screen; null: follow the newest. */
  let cursor = null;
  const totals = { steps: 0, peakBatch: 0, preemptions: 0, queries: 0, hits: 0 };
  const colors = new Map();
  let drawPending = false;
  let gridLayout = null;

  const apiKey = () => sessionStorage.getItem(KEY_STORE) || '';
  function headers(json) {
    const h = {};
    if (json) h['content-type'] = 'application/json';
    if (apiKey()) h.authorization = 'Bearer ' + apiKey();
    return h;
  }
  function setStatus(text, live) {
    $('status').textContent = text;
    $('status').classList.toggle('live', !!live);
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  /** Request ids without the API's prefix (chatcmpl-, cmpl-...). */
  const label = (id) => id.replace(/^(\d+_)?(chatcmpl|cmpl|resp|msg|embd)-/, '$1');
  function colorOf(id) {
    let c = colors.get(id);
    if (!c) {
      c = `hsl(${Math.round((colors.size * 137.508 + 210) % 360)} 62% 52%)`;
      colors.set(id, c);
    }
    return c;
  }

  // ---- the event stream ----
  let retryTimer = null;
  function retry(ms) {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, ms);
  }
  async function connect() {
    setStatus('connecting…');
    let res;
    try {
      res = await fetch('engine/events', { headers: headers(false), cache: 'no-store' });
    } catch {
      setStatus('server unreachable; retrying');
      return retry(2000);
    }
    if (res.status === 404) {
      $('off').hidden = false;
      $('main').hidden = true;
      setStatus('engine view off');
      return;
    }
    if (res.status === 401) {
      setStatus('needs an API key');
      showKeyPanel(true);
      return;
    }
    if (!res.ok || !res.body) {
      setStatus(`error ${res.status}; retrying`);
      return retry(3000);
    }
    setStatus('live', true);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          onEvent(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
      }
    } catch {
      /* the connection broke: reconnect below */
    }
    setStatus('disconnected; reconnecting');
    retry(1000);
  }
  function onEvent(block) {
    let event = 'message';
    let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data += line.slice(5).trim();
    }
    if (!data) return;
    const msg = JSON.parse(data);
    if (event === 'config') onConfig(msg);
    else if (event === 'step') onStep(msg);
  }
  function onConfig(c) {
    config = c;
    $('config').textContent =
      `${c.model} · block_size ${c.blockSize} · ${c.numBlocks} blocks (${c.numBlocks * c.blockSize} tokens) · ` +
      `token budget ${c.maxNumBatchedTokens} · max_num_seqs ${c.maxNumSeqs} · prefix caching ${c.enablePrefixCaching ? 'on' : 'off'}`;
  }
  function onStep(r) {
    if (history.length > 0 && r.step < history[history.length - 1].step) history.length = 0; // the server restarted
    history.push(r);
    if (history.length > HISTORY) {
      history.shift();
      if (cursor !== null) cursor = Math.max(0, cursor - 1);
    }
    totals.steps = r.step;
    totals.peakBatch = Math.max(totals.peakBatch, r.running.filter((q) => q.numScheduledTokens > 0).length);
    totals.preemptions += r.preempted.count;
    totals.queries += r.prefixCacheQueries;
    totals.hits += r.prefixCacheHits;
    scheduleDraw();
  }
  function scheduleDraw() {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(() => {
      drawPending = false;
      draw();
    });
  }

  // ---- drawing ----
  function draw() {
    $('peak-batch').textContent = String(totals.peakBatch);
    $('total-steps').textContent = String(totals.steps);
    $('preemptions').textContent = String(totals.preemptions);
    $('hit-rate').textContent = totals.queries > 0 ? `${((100 * totals.hits) / totals.queries).toFixed(1)}%` : '–';
    const r = history[cursor ?? history.length - 1];
    if (!r) return;
    drawStep(r);
    drawGrid(r.kv);
    drawTimeline();
  }
  function drawStep(r) {
    $('step-no').textContent = String(r.step);
    const notes = [];
    if (r.idle) notes.push('idle: no request left');
    if (r.numSteps > 1) notes.push(`${r.numSteps - 1} steps since the last one shown`);
    if (cursor !== null) notes.push(`paused (${history.length - 1 - cursor} newer)`);
    $('step-note').textContent = notes.join(' · ');

    const budget = $('budget');
    budget.replaceChildren();
    for (const q of r.running) {
      if (q.numScheduledTokens === 0) continue;
      const s = el('span', q.phase === 'prefill' ? 'prefill' : '');
      s.style.width = `${(100 * q.numScheduledTokens) / r.tokenBudget}%`;
      s.style.backgroundColor = colorOf(q.reqId);
      s.title = `${label(q.reqId)}: ${q.numScheduledTokens} tokens (${q.phase})`;
      budget.append(s);
    }
    const scheduled = r.running.filter((q) => q.numScheduledTokens > 0).length;
    $('budget-text').textContent =
      `${scheduled} request${scheduled === 1 ? '' : 's'} in this step's batch · ${r.numScheduledTokens} of ${r.tokenBudget} tokens of the token budget` +
      ` · running ${r.running.length} of max_num_seqs ${r.maxNumSeqs}`;

    const rows = r.running.map((q) => requestRow(q, r));
    $('running').replaceChildren(...rows);

    $('waiting-count').textContent = String(r.numWaitingReqs);
    const chips = r.waiting.map((w) => {
      const c = el('span', `chip ${w.status}`, `${label(w.reqId)}${w.status === 'preempted' ? ' (preempted)' : w.status === 'waiting_for_fsm' ? ' (grammar)' : ''}`);
      c.title = `${w.numTokens} tokens; preempted ${w.numPreemptions}×`;
      return c;
    });
    if (r.numWaitingReqs > r.waiting.length) chips.push(el('span', 'chip', `+${r.numWaitingReqs - r.waiting.length}`));
    $('waiting').replaceChildren(...chips);

    const since = [];
    const ids = (l) => l.ids.map(label).join(', ') + (l.count > l.ids.length ? ` +${l.count - l.ids.length}` : '');
    if (r.admitted.count) since.push(`admitted: ${ids(r.admitted)}`);
    if (r.preempted.count) since.push(`preempted: ${ids(r.preempted)}`);
    if (r.finished.count) since.push(`finished: ${ids(r.finished)}`);
    if (r.prefixCacheQueries) since.push(`prefix cache: ${r.prefixCacheHits} of ${r.prefixCacheQueries} prompt tokens hit`);
    $('since').textContent = since.length ? `Since the step shown before: ${since.join(' · ')}` : '';
  }
  function requestRow(q, r) {
    const tr = el('tr', q.numScheduledTokens === 0 ? 'idle' : '');
    tr.dataset.testid = 'running-row';
    const name = el('td');
    const sw = el('i', 'sw');
    sw.style.backgroundColor = colorOf(q.reqId);
    name.append(sw, label(q.reqId));
    const what = el('td');
    if (q.numScheduledTokens === 0) what.append(el('span', 'badge left-out', 'left out: no budget'));
    else what.append(el('span', `badge ${q.phase === 'prefill' ? 'prefill' : ''}`, q.phase === 'prefill' ? 'prefill chunk' : 'decode'));
    if (q.numSpecTokens > 0) what.append(el('span', 'badge', `+${q.numSpecTokens} draft tokens (speculative)`));
    if (q.isNew) what.append(el('span', 'badge new', q.numPreemptions > 0 ? 'resumed' : 'admitted'));
    if (q.numPreemptions > 0) what.append(el('span', 'badge preempted', `preempted ${q.numPreemptions}×`));
    const progress = el('td');
    const bar = el('span', 'progress');
    const pct = (n) => `${(100 * n) / Math.max(1, q.numTokens)}%`;
    const hitEnd = Math.min(q.numCachedTokens, q.numComputedTokens);
    for (const [cls, from, to] of [['hit', 0, hitEnd], ['done', hitEnd, q.numComputedTokens], ['now', q.numComputedTokens, q.numComputedTokens + q.numScheduledTokens]]) {
      const i = el('i', cls);
      i.style.left = pct(from);
      i.style.width = pct(to - from);
      bar.append(i);
    }
    progress.append(bar, `${q.numComputedTokens} / ${q.numTokens}`);
    progress.title = `prompt ${q.numPromptTokens} + outputs ${q.numOutputTokens}`;
    const hit = el('td', '', q.numCachedTokens > 0 ? `${q.numCachedTokens} tokens (${Math.floor(q.numCachedTokens / r.kv.blockSize)} blocks)` : '–');
    hit.dataset.testid = 'prefix-hit';
    const tokens = el('td', '', String(q.numScheduledTokens));
    tokens.dataset.testid = 'scheduled-tokens';
    tr.append(name, what, tokens, progress, hit, el('td', '', String(q.numBlocks)));
    return tr;
  }

  /** The runs back to one [state, owner] per cell. */
  function decodeRuns(kv) {
    const state = new Uint8Array(kv.numCells);
    const owner = new Int32Array(kv.numCells);
    let c = 0;
    for (let i = 0; i < kv.runs.length; i += 3) {
      state.fill(kv.runs[i], c, c + kv.runs[i + 2]);
      owner.fill(kv.runs[i + 1], c, c + kv.runs[i + 2]);
      c += kv.runs[i + 2];
    }
    return { state, owner };
  }
  function drawGrid(kv) {
    const canvas = $('kv-grid');
    const width = canvas.clientWidth || 600;
    const cell = Math.max(3, Math.min(22, Math.floor(Math.sqrt((width * 300) / kv.numCells))));
    const cols = Math.max(1, Math.floor(width / cell));
    const rows = Math.ceil(kv.numCells / cols);
    const dpr = window.devicePixelRatio || 1;
    canvas.width = cols * cell * dpr;
    canvas.height = rows * cell * dpr;
    canvas.style.height = `${rows * cell}px`;
    canvas.style.width = `${cols * cell}px`;
    const g = canvas.getContext('2d');
    g.scale(dpr, dpr);
    const { state, owner } = decodeRuns(kv);
    const gap = cell >= 6 ? 1 : 0;
    for (let c = 0; c < kv.numCells; c++) {
      const x = (c % cols) * cell;
      const y = Math.floor(c / cols) * cell;
      const s = state[c];
      const ownerColor = owner[c] >= 0 ? colorOf(kv.owners[owner[c]]) : '#888';
      const size = cell - gap;
      if (s === 0) g.fillStyle = '#e9ecf1';
      else if (s === 1) g.fillStyle = '#9fd8bd';
      else g.fillStyle = ownerColor;
      g.fillRect(x, y, size, size);
      if (s === 3 && cell >= 6) {
        g.fillStyle = '#fff';
        g.fillRect(x + size / 4, y + size / 4, size / 2, size / 2);
      } else if (s === 4) {
        g.strokeStyle = '#1d2330';
        g.lineWidth = Math.max(1, cell / 6);
        g.strokeRect(x + g.lineWidth / 2, y + g.lineWidth / 2, size - g.lineWidth, size - g.lineWidth);
      }
    }
    gridLayout = { kv, cols, cell, state, owner };
    STATES.forEach((name, i) => ($(`kv-count-${name}`).textContent = String(kv.counts[i])));
    $('kv-note').textContent =
      `${kv.numBlocks} blocks of block_size ${kv.blockSize}` + (kv.blocksPerCell > 1 ? ` · a cell is ${kv.blocksPerCell} blocks (its busiest)` : ' · a cell is a block');
  }
  function onGridHover(ev) {
    if (!gridLayout) return;
    const { kv, cols, cell, state, owner } = gridLayout;
    const rect = ev.target.getBoundingClientRect();
    const c = Math.floor((ev.clientY - rect.top) / cell) * cols + Math.floor((ev.clientX - rect.left) / cell);
    if (c < 0 || c >= kv.numCells) return;
    const first = 1 + c * kv.blocksPerCell;
    const which = kv.blocksPerCell > 1 ? `blocks ${first}–${Math.min(kv.numBlocks, first + kv.blocksPerCell - 1)}` : `block ${first}`;
    const who = owner[c] >= 0 ? ` · ${label(kv.owners[owner[c]])}` : '';
    $('kv-hover').textContent = `${which}: ${STATES[state[c]].replace('_', ' ')}${who} · tokens ${(first - 1) * kv.blockSize}… of the cache`;
  }

  function drawTimeline() {
    const canvas = $('timeline');
    const width = canvas.clientWidth || 600;
    const height = 110;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = width * dpr;
    canvas.height = height * dpr;
    canvas.style.height = `${height}px`;
    const g = canvas.getContext('2d');
    g.scale(dpr, dpr);
    const end = cursor === null ? history.length : cursor + 1;
    const shown = history.slice(Math.max(0, end - TIMELINE_COLS), end);
    const max = Math.max(8, ...shown.map((r) => r.numScheduledTokens));
    const colW = width / TIMELINE_COLS;
    // Heights on a square-root scale: a 300-token prefill and a 1-token decode both stay visible.
    const h = (n) => (Math.sqrt(n) / Math.sqrt(max)) * (height - 14);
    shown.forEach((r, i) => {
      const x = i * colW;
      let y = height;
      let acc = 0;
      for (const q of r.running) {
        if (q.numScheduledTokens === 0) continue;
        const top = height - h(acc + q.numScheduledTokens);
        g.fillStyle = colorOf(q.reqId);
        g.globalAlpha = q.phase === 'prefill' ? 0.55 : 1;
        g.fillRect(x, top, Math.max(1, colW - 1), y - top);
        acc += q.numScheduledTokens;
        y = top;
      }
      g.globalAlpha = 1;
      if (r.preempted.count > 0) {
        g.fillStyle = '#d92d20';
        g.fillRect(x, 0, Math.max(2, colW - 1), 6);
      }
    });
    g.fillStyle = '#667085';
    g.font = '11px system-ui, sans-serif';
    g.fillText(`${max} tokens`, 2, 11);
  }

  // ---- controls ----
  const SYSTEM = 'You are a scribe of the King James Bible. In the beginning God created the heaven and the earth. ' +
    'And the earth was without form, and void; and darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters. ' +
    'And God said, Let there be light: and there was light. And God saw the light, that it was good: and God divided the light from the darkness. ' +
    'And God called the light Day, and the darkness he called Night. And the evening and the morning were the first day. ' +
    'And God said, Let there be a firmament in the midst of the waters, and let it divide the waters from the waters. ';
  const QUESTIONS = ['Tell of the first day.', 'Tell of the waters.', 'Tell of the light.', 'Tell of the firmament.', 'Tell of the night.', 'Tell of the deep.'];
  let burstNo = 0;
  async function sendBurst() {
    // NOTE: at most 5: a browser opens 6 connections to one server, and the event stream holds one.
    const n = Math.max(1, Math.min(5, Number($('burst-n').value) || 4));
    const maxTokens = Math.max(1, Math.min(2048, Number($('burst-max').value) || 128));
    const share = $('burst-share').checked;
    const model = config ? config.model : undefined;
    burstNo++;
    let done = 0;
    let failed = 0;
    const status = () => ($('burst-status').textContent = `burst ${burstNo}: ${n - done - failed} in flight, ${done} done${failed ? `, ${failed} failed` : ''}`);
    status();
    const one = async (i) => {
      const shared = share && i % 2 === 0;
      const messages = [
        { role: 'system', content: shared ? SYSTEM : `You are helper number ${i}.` },
        { role: 'user', content: QUESTIONS[i % QUESTIONS.length] },
      ];
      // ignore_eos (a vLLM extension): each request runs for its whole max_tokens.
      const body = { model, messages, max_tokens: maxTokens, ignore_eos: true };
      const h = headers(true);
      h['x-request-id'] = `b${burstNo}-${i + 1}${shared ? '-shared' : ''}`;
      try {
        const res = await fetch('v1/chat/completions', { method: 'POST', headers: h, body: JSON.stringify(body) });
        if (!res.ok) throw new Error(String(res.status));
        await res.json();
        done++;
      } catch {
        failed++;
      }
      status();
    };
    await Promise.all(Array.from({ length: n }, (_, i) => one(i)));
  }
  function setCursor(c) {
    cursor = c;
    $('pause').setAttribute('aria-pressed', String(cursor !== null));
    $('pause').textContent = cursor === null ? 'Pause' : 'Live';
    scheduleDraw();
  }
  function showKeyPanel(open) {
    $('key-panel').hidden = !open;
    $('key-toggle').setAttribute('aria-expanded', String(open));
    if (open) $('api-key').focus();
  }

  $('burst').addEventListener('click', () => void sendBurst());
  $('pause').addEventListener('click', () => setCursor(cursor === null ? Math.max(0, history.length - 1) : null));
  $('prev').addEventListener('click', () => setCursor(Math.max(0, (cursor ?? history.length - 1) - 1)));
  $('next').addEventListener('click', () => {
    if (cursor === null) return;
    setCursor(cursor + 1 >= history.length - 1 ? null : cursor + 1);
  });
  $('timeline').addEventListener('click', (ev) => {
    const rect = ev.target.getBoundingClientRect();
    const end = cursor === null ? history.length : cursor + 1;
    const start = Math.max(0, end - TIMELINE_COLS);
    const i = start + Math.floor(((ev.clientX - rect.left) / rect.width) * TIMELINE_COLS);
    if (i < history.length) setCursor(i);
  });
  $('kv-grid').addEventListener('mousemove', onGridHover);
  $('key-toggle').addEventListener('click', () => showKeyPanel($('key-panel').hidden));
  $('key-panel').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY_STORE, $('api-key').value.trim());
    showKeyPanel(false);
    retry(0);
  });
  window.addEventListener('resize', scheduleDraw);
  connect();
})();
