// The engine panel: the server's /metrics once a second (running and waiting
// requests, KV cache use, prefix-cache hits) and a chart of generation tokens/s.
const $ = (id) => document.getElementById(id);
const WINDOW_MS = 3 * 60 * 1000;
const fmtInt = new Intl.NumberFormat('en-US');
let setConn = () => {};

/** Sums the samples of each metric over its label sets. */
function parseMetrics(text) {
  const m = new Map();
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const r = /^([A-Za-z_:][\w:]*)(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})?\s+(\S+)/.exec(line);
    if (r) m.set(r[1], (m.get(r[1]) || 0) + Number(r[3]));
  }
  return m;
}
const history = []; // { t (ms), rate (tokens/s) }
let prev = null;
async function pollMetrics() {
  try {
    const res = await fetch('metrics', { cache: 'no-store' });
    if (!res.ok) throw new Error('HTTP ' + res.status);
    const m = parseMetrics(await res.text());
    const now = performance.now();
    const gen = m.get('vllm:generation_tokens_total');
    if (gen !== undefined) {
      // NOTE: the rate is the counter's difference over the poll interval; a drop means the server restarted.
      if (prev && gen >= prev.gen) history.push({ t: now, rate: (gen - prev.gen) / ((now - prev.t) / 1000) });
      prev = { t: now, gen };
    }
    while (history.length && history[0].t < now - WINDOW_MS) history.shift();
    const show = (id, v) => { $(id).textContent = v; };
    const running = m.get('vllm:num_requests_running');
    const waiting = m.get('vllm:num_requests_waiting');
    const kv = m.get('vllm:kv_cache_usage_perc');
    const q = m.get('vllm:prefix_cache_queries_total');
    const hits = m.get('vllm:prefix_cache_hits_total');
    show('m-running', running === undefined ? '–' : fmtInt.format(running));
    show('m-waiting', waiting === undefined ? '–' : fmtInt.format(waiting));
    show('m-kv', kv === undefined ? '–' : (kv * 100).toFixed(1) + '%');
    $('m-kv-bar').style.width = kv === undefined ? '0' : Math.min(100, kv * 100).toFixed(1) + '%';
    show('m-prefix', q ? ((100 * (hits || 0)) / q).toFixed(1) + '%' : '–');
    $('m-prefix').parentElement.title = q ? `${fmtInt.format(hits || 0)} of ${fmtInt.format(q)} prompt tokens found in the cache` : 'no prompt tokens yet';
    const last = history.length ? history[history.length - 1].rate : null;
    show('m-rate', last === null ? '–' : last.toFixed(1) + ' tok/s');
    show('engine-updated', 'live');
    setConn(true, 'connected');
  } catch {
    show0();
    setConn(false, 'server unreachable');
  }
  drawChart();
  setTimeout(pollMetrics, 1000);
}
function show0() {
  $('engine-updated').textContent = 'no data';
}

function niceMax(v) {
  if (v <= 10) return 10;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}
function drawChart() {
  const c = $('chart');
  const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth, h = c.clientHeight;
  if (!w || !h) return;
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
  }
  const g = c.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const css = getComputedStyle(document.documentElement);
  const color = (n) => css.getPropertyValue(n).trim();
  const top = 14, bottom = h - 16;
  const max = niceMax(Math.max(0, ...history.map((p) => p.rate)));
  g.font = '11px system-ui, sans-serif';
  g.fillStyle = color('--muted');
  g.strokeStyle = color('--line');
  g.lineWidth = 1;
  for (const f of [0, 0.5, 1]) {
    const y = Math.round(bottom - f * (bottom - top)) + 0.5;
    g.beginPath(); g.moveTo(0, y); g.lineTo(w, y); g.stroke();
  }
  g.textBaseline = 'bottom';
  g.fillText(fmtInt.format(max), 2, top - 1);
  g.textBaseline = 'top';
  g.fillText('−3 min', 2, bottom + 3);
  g.textAlign = 'right';
  g.fillText('now', w - 2, bottom + 3);
  g.textAlign = 'left';
  if (history.length < 2) return;
  const now = performance.now();
  const x = (t) => w - ((now - t) / WINDOW_MS) * w;
  const y = (r) => bottom - (r / max) * (bottom - top);
  g.beginPath();
  history.forEach((p, i) => (i ? g.lineTo(x(p.t), y(p.rate)) : g.moveTo(x(p.t), y(p.rate))));
  g.strokeStyle = color('--accent');
  g.lineWidth = 1.6;
  g.lineJoin = 'round';
  g.stroke();
  g.lineTo(x(history[history.length - 1].t), bottom);
  g.lineTo(x(history[0].t), bottom);
  g.closePath();
  g.globalAlpha = 0.15;
  g.fillStyle = color('--accent');
  g.fill();
  g.globalAlpha = 1;
}

/** Starts polling; `conn(up, text)` shows whether the server answers. */
export function startEnginePanel(conn) {
  setConn = conn;
  if (window.ResizeObserver) new ResizeObserver(drawChart).observe($('chart'));
  window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', drawChart);
  pollMetrics();
}
