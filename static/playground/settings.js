// The sampling controls: every sampling field of the API, each showing the server's
// default (the model card's default_sampling_params: the model's
// generation_config.json over vLLM's defaults) until the user changes it. Only the
// fields the user changed are sent, so the server's defaults apply to the rest.
// What the user changed is kept across reloads (localStorage).
import { store } from './api.js';

const SETTINGS_STORE = 'vllm-ts.playground.settings.v2';

/** The numeric controls: element id, API field, label, input kind and range. */
const NUMERIC = [
  { id: 'temperature', param: 'temperature', label: 'Temperature', range: [0, 2, 0.05] },
  { id: 'top-p', param: 'top_p', label: 'Top-p', range: [0, 1, 0.01] },
  { id: 'top-k', param: 'top_k', label: 'Top-k', int: true, min: -1, help: '0 or -1: off' },
  { id: 'min-p', param: 'min_p', label: 'Min-p', range: [0, 1, 0.01] },
  { id: 'presence-penalty', param: 'presence_penalty', label: 'Presence penalty', range: [-2, 2, 0.05] },
  { id: 'frequency-penalty', param: 'frequency_penalty', label: 'Frequency penalty', range: [-2, 2, 0.05] },
  { id: 'repetition-penalty', param: 'repetition_penalty', label: 'Repetition penalty', range: [0.05, 2, 0.05] },
  { id: 'max-tokens', param: 'max_tokens', label: 'Max tokens', int: true, min: 1, empty: 'to context' },
  { id: 'seed', param: 'seed', label: 'Seed', int: true, empty: 'random' },
];
/** The other controls (kept as the user left them): element id -> kind. */
const OTHER = { 'stop-seqs': 'text', 'ignore-eos': 'check', logprobs: 'check', 'top-logprobs': 'text', 'json-schema': 'text', tools: 'text', 'tool-choice': 'text', system: 'text' };

const $ = (id) => document.getElementById(id);
let defaults = {};
let overrides = {};

const fmt = (v) => (v === null || v === undefined ? '' : String(Math.round(v * 1000) / 1000));

function save() {
  const other = {};
  for (const [id, kind] of Object.entries(OTHER)) other[id] = kind === 'check' ? $(id).checked : $(id).value;
  store.set('localStorage', SETTINGS_STORE, JSON.stringify({ overrides, other }));
}

/** Shows each numeric control's value: the user's, else the server's default. */
function show(c) {
  const input = $(c.id);
  const changed = c.param in overrides;
  const value = changed ? overrides[c.param] : defaults[c.param];
  if (document.activeElement !== input || !changed) input.value = value === null || value === undefined ? '' : String(value);
  if (c.range) $(c.id + '-out').textContent = fmt(value);
  input.closest('.field').classList.toggle('changed', changed);
  $('reset-' + c.id).hidden = !changed;
  const d = defaults[c.param];
  $('reset-' + c.id).title = 'Back to the server default (' + (d === null || d === undefined ? c.empty || 'none' : fmt(d)) + ')';
  if (c.empty) input.placeholder = d === null || d === undefined ? c.empty : fmt(d);
}

function numericField(c) {
  const f = document.createElement('div');
  f.className = 'field';
  const head = document.createElement('div');
  head.className = 'field-head';
  const label = document.createElement('label');
  label.htmlFor = c.id;
  label.textContent = c.label;
  const right = document.createElement('span');
  right.className = 'field-right';
  if (c.range) {
    const out = document.createElement('output');
    out.id = c.id + '-out';
    out.htmlFor = c.id;
    right.append(out);
  }
  // NOTE: named "Reset" alone, so that the control's label names only the control.
  const reset = document.createElement('button');
  reset.type = 'button';
  reset.className = 'reset';
  reset.id = 'reset-' + c.id;
  reset.dataset.testid = 'reset-' + c.id;
  reset.textContent = '↺';
  reset.setAttribute('aria-label', 'Reset');
  right.append(reset);
  head.append(label, right);
  const input = document.createElement('input');
  input.id = c.id;
  input.dataset.testid = c.id;
  if (c.range) {
    input.type = 'range';
    [input.min, input.max, input.step] = c.range.map(String);
  } else {
    input.type = 'number';
    input.step = '1';
    input.inputMode = 'numeric';
    if (c.min !== undefined) input.min = String(c.min);
  }
  f.append(head, input);
  if (c.help) {
    const h = document.createElement('span');
    h.className = 'help';
    h.textContent = c.help;
    f.append(h);
  }
  input.addEventListener('input', () => {
    const raw = input.value.trim();
    if (raw === '') delete overrides[c.param];
    else overrides[c.param] = c.int ? Math.trunc(Number(raw)) : Number(raw);
    // NOTE: a value equal to the server's default is no change: nothing is sent for it.
    if (overrides[c.param] === defaults[c.param]) delete overrides[c.param];
    show(c);
    save();
  });
  input.addEventListener('blur', () => show(c));
  reset.addEventListener('click', () => {
    delete overrides[c.param];
    show(c);
    save();
  });
  return f;
}

/** Builds the numeric controls into `#numeric-fields` and restores the saved settings. */
export function initSettings() {
  const box = $('numeric-fields');
  for (const c of NUMERIC) box.append(numericField(c));
  let saved = null;
  try { saved = JSON.parse(store.get('localStorage', SETTINGS_STORE) || 'null'); } catch { /* ignore */ }
  if (saved && saved.overrides && typeof saved.overrides === 'object') {
    for (const c of NUMERIC) if (typeof saved.overrides[c.param] === 'number') overrides[c.param] = saved.overrides[c.param];
  }
  if (saved && saved.other) {
    for (const [id, kind] of Object.entries(OTHER)) {
      if (!(id in saved.other)) continue;
      if (kind === 'check') $(id).checked = !!saved.other[id];
      else $(id).value = String(saved.other[id]);
    }
  }
  for (const id of Object.keys(OTHER)) $(id).addEventListener('input', save);
  $('reset-all').addEventListener('click', () => {
    overrides = {};
    NUMERIC.forEach(show);
    save();
  });
  NUMERIC.forEach(show);
}

/** The server's defaults (a model card's default_sampling_params; {} when it has none). */
export function setDefaults(d) {
  defaults = d && typeof d === 'object' ? d : {};
  NUMERIC.forEach(show);
}

export const tokenViewOn = () => $('logprobs').checked;

function jsonBox(id, what) {
  const text = $(id).value.trim();
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(what + ' is not JSON: ' + e.message);
  }
}

/**
 * The request's sampling fields: the changed ones only, plus stop strings, EOS,
 * logprobs, structured output and (chat) tools. Throws on a box that is not JSON.
 */
export function samplingParams(mode) {
  const p = { ...overrides };
  // NOTE: vLLM reads a missing max_tokens as "up to the context length" (or generation_config's max_new_tokens).
  const stop = $('stop-seqs').value.split('\n').filter((s) => s !== '').map((s) => s.replace(/\\n/g, '\n').replace(/\\t/g, '\t'));
  if (stop.length) p.stop = stop;
  if ($('ignore-eos').checked) p.ignore_eos = true;
  if (tokenViewOn()) {
    const top = Math.max(0, Math.min(20, Math.trunc(Number($('top-logprobs').value) || 0)));
    if (mode === 'chat') Object.assign(p, { logprobs: true, top_logprobs: top });
    else p.logprobs = top;
  }
  const schema = $('json-schema').value.trim();
  if (schema) {
    // vLLM's structured_outputs.json; text that is not JSON goes as it is, so the server's 400 names what is wrong.
    let json = schema;
    try { json = JSON.parse(schema); } catch { /* sent as text */ }
    p.structured_outputs = { json };
  }
  if (mode === 'chat') {
    const tools = jsonBox('tools', 'The tools box');
    if (tools !== undefined) {
      p.tools = Array.isArray(tools) ? tools : [tools];
      const choice = $('tool-choice').value;
      const first = p.tools[0] && p.tools[0].function && p.tools[0].function.name;
      if (choice === 'first' && first) p.tool_choice = { type: 'function', function: { name: first } };
      else if (choice && choice !== 'first') p.tool_choice = choice;
    }
  }
  return p;
}

export const systemPrompt = () => $('system').value.trim();
