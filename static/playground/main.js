// The playground page: the API key bar, the served model (and its sampling
// defaults), chat and raw-completion modes, the composer, and the engine panel.
import { apiKey, errorText, headers, setApiKey, statsOf, streamRequest } from './api.js';
import { createChat } from './chat.js';
import { initSettings, samplingParams, setDefaults, tokenViewOn } from './settings.js';
import { createSidebar } from './sidebar.js';
import { fromCompletionLogprobs, renderTokens } from './tokens.js';
import { startEnginePanel } from './engine_panel.js';

const $ = (id) => document.getElementById(id);
const fmtInt = new Intl.NumberFormat('en-US');
const st = { model: null, maxModelLen: null, mode: 'chat', ctrl: null };

// ---- API key bar ----
const keyPanel = $('key-panel');
function showKeyPanel(message) {
  $('key-label').textContent = message;
  keyPanel.hidden = false;
  $('key-toggle').setAttribute('aria-expanded', 'true');
  $('api-key').value = apiKey();
  $('api-key').focus();
}
function hideKeyPanel() {
  keyPanel.hidden = true;
  $('key-toggle').setAttribute('aria-expanded', 'false');
}
function keyRefused() {
  showKeyPanel(apiKey() ? 'The server refused this API key; enter another' : 'This server needs an API key');
}
$('key-toggle').addEventListener('click', () => (keyPanel.hidden ? showKeyPanel('API key for this server') : hideKeyPanel()));
$('key-form').addEventListener('submit', (e) => {
  e.preventDefault();
  setApiKey($('api-key').value.trim());
  hideKeyPanel();
  loadModels();
});
$('key-forget').addEventListener('click', () => {
  setApiKey(null);
  $('api-key').value = '';
  loadModels();
});

// ---- the served model ----
function setConn(up, text) {
  $('conn').dataset.state = up ? 'up' : 'down';
  $('conn-text').textContent = text;
}
let modelsRetry = 0;
async function loadModels() {
  clearTimeout(modelsRetry);
  let res;
  try {
    res = await fetch('v1/models', { headers: headers(), cache: 'no-store' });
  } catch {
    setConn(false, 'server unreachable');
    modelsRetry = setTimeout(loadModels, 2000);
    return;
  }
  if (res.status === 401) {
    $('model-name').textContent = 'API key needed';
    updateSend();
    keyRefused();
    return;
  }
  if (!res.ok) {
    $('model-name').textContent = 'error: ' + (await errorText(res));
    modelsRetry = setTimeout(loadModels, 2000);
    return;
  }
  const card = ((await res.json()).data || [])[0];
  if (!card) {
    $('model-name').textContent = 'no model served';
    return;
  }
  st.model = card.id;
  st.maxModelLen = Number.isFinite(card.max_model_len) ? card.max_model_len : null;
  $('model-name').textContent = card.id;
  $('model-name').title = card.root && card.root !== card.id ? `${card.id} (${card.root})` : card.id;
  setDefaults(card.default_sampling_params);
  const ctx = $('ctx-len');
  ctx.hidden = st.maxModelLen === null;
  if (st.maxModelLen !== null) {
    ctx.textContent = fmtInt.format(st.maxModelLen) + ' ctx';
    $('max-tokens').max = String(st.maxModelLen);
  }
  updateSend();
}

// ---- busy state, scrolling ----
function updateSend() {
  const busy = st.ctrl !== null;
  $('send').disabled = busy || st.model === null;
  $('stop').disabled = !busy;
  document.body.classList.toggle('busy', busy);
}
// NOTE: the view follows the stream only while the reader is at the bottom; scrolling up stops it.
const scroll = {
  nearBottom() {
    const p = $('panel-' + st.mode);
    return p.scrollHeight - p.scrollTop - p.clientHeight < 40;
  },
  down() {
    const p = $('panel-' + st.mode);
    p.scrollTop = p.scrollHeight;
  },
};
const app = {
  model: () => st.model,
  busy: () => st.ctrl !== null,
  begin() {
    st.ctrl = new AbortController();
    updateSend();
    return st.ctrl;
  },
  end() {
    st.ctrl = null;
    updateSend();
  },
  keyRefused,
  scroll,
  changed: (conv) => sidebar.changed(conv),
};

const chat = createChat(app);
const sidebar = createSidebar({ onSelect: (conv) => chat.show(conv), busy: app.busy });

// ---- modes ----
function setMode(mode) {
  st.mode = mode;
  for (const m of ['chat', 'completion']) {
    const on = m === mode;
    $('tab-' + m).setAttribute('aria-selected', String(on));
    $('tab-' + m).tabIndex = on ? 0 : -1;
    $('panel-' + m).hidden = !on;
  }
  const isChat = mode === 'chat';
  $('input-label').textContent = isChat ? 'Message' : 'Prompt';
  $('input').placeholder = isChat ? 'Message the model' : 'Write the start of a text; the model continues it';
  $('send').textContent = isChat ? 'Send' : 'Generate';
  document.body.dataset.mode = mode;
  $('input').focus();
}
$('tab-chat').addEventListener('click', () => setMode('chat'));
$('tab-completion').addEventListener('click', () => setMode('completion'));
document.querySelector('.tabs').addEventListener('keydown', (e) => {
  if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
  setMode(st.mode === 'chat' ? 'completion' : 'chat');
  $('tab-' + st.mode).focus();
});

// ---- raw completion ----
function completionStats(s, error) {
  const el = $('completion-stats');
  el.textContent = '';
  const add = (testid, label, value) => {
    const span = document.createElement('span');
    span.dataset.testid = testid;
    const b = document.createElement('b');
    b.textContent = value;
    span.append(b, ' ' + label);
    el.append(span);
  };
  add('stat-tokens', 'tokens', (s.exact ? '' : '≈') + fmtInt.format(s.tokens));
  if (s.ttftMs !== undefined) add('stat-ttft', 'ms to first token', fmtInt.format(s.ttftMs));
  if (s.rate !== undefined) add('stat-rate', 'tok/s', s.rate.toFixed(1));
  add('stat-time', 's', s.seconds.toFixed(2));
  const fin = document.createElement('span');
  fin.dataset.testid = 'stat-finish';
  fin.textContent = s.finish === 'stopped' ? 'stopped' : s.finish === 'length' ? 'hit max tokens' : s.finish === 'stop' ? 'finished' : s.finish || '';
  el.append(fin);
  if (error) {
    const e = document.createElement('div');
    e.setAttribute('role', 'alert');
    e.dataset.testid = 'error';
    e.textContent = error;
    el.append(e);
  }
}

async function sendCompletion(prompt) {
  let params;
  try {
    params = samplingParams('completion');
  } catch (e) {
    completionStats({ tokens: 0, exact: true, seconds: 0 }, e.message);
    return;
  }
  const out = $('completion-output');
  out.textContent = '';
  const p = document.createElement('span');
  p.className = 'prompt';
  p.textContent = prompt;
  const gen = document.createElement('span');
  gen.className = 'gen streaming';
  gen.dataset.testid = 'completion-text';
  out.append(p, gen);
  out.setAttribute('aria-busy', 'true');
  $('completion-stats').textContent = '';
  const tokens = [];
  let text = '';
  let scheduled = false;
  const paint = () => {
    scheduled = false;
    const follow = scroll.nearBottom();
    if (tokens.length) renderTokens(gen, tokens);
    else gen.textContent = text;
    if (follow) scroll.down();
  };
  const ctrl = app.begin();
  const r = await streamRequest('v1/completions', { model: st.model, prompt, ...params }, ctrl, (c) => {
    if (c.logprobs) tokens.push(...fromCompletionLogprobs(c.logprobs));
    if (!c.text) return false;
    text += c.text;
    if (!scheduled) {
      scheduled = true;
      document.hidden ? setTimeout(paint, 250) : requestAnimationFrame(paint);
    }
    return true;
  });
  app.end();
  paint();
  gen.classList.remove('streaming');
  out.removeAttribute('aria-busy');
  if (r.status === 401) {
    out.textContent = '';
    keyRefused();
    return;
  }
  completionStats(statsOf(r), r.error);
}

// ---- composer ----
$('composer').addEventListener('submit', (e) => {
  e.preventDefault();
  if (st.ctrl || st.model === null) return;
  const text = $('input').value;
  if (st.mode === 'chat') {
    if (!text.trim()) return;
    $('input').value = '';
    chat.send(text);
  } else if (text) sendCompletion(text);
});
$('input').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    $('composer').requestSubmit();
  }
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && st.ctrl) st.ctrl.abort();
});
$('stop').addEventListener('click', () => st.ctrl && st.ctrl.abort());
$('logprobs').addEventListener('change', () => ($('top-logprobs').disabled = !tokenViewOn()));
$('drawer-scrim').addEventListener('click', () => document.body.classList.remove('drawer-open'));

initSettings();
$('top-logprobs').disabled = !tokenViewOn();
updateSend();
loadModels();
startEnginePanel(setConn);
sidebar.start();
setMode('chat');
