// Token probabilities: an answer shown token by token, each coloured by its
// probability; hovering or clicking a token shows its top alternatives with their
// probabilities and logprobs (from the API's logprobs / top_logprobs).
//
// A token: { t: text, lp: logprob, top: [[text, logprob], ...] }.

/** Tokens of a chat chunk's `logprobs.content`. */
export function fromChatLogprobs(content) {
  return (content || []).map((e) => ({ t: e.token, lp: e.logprob, top: (e.top_logprobs || []).map((a) => [a.token, a.logprob]) }));
}

/** Tokens of a completion chunk's `logprobs` (tokens, token_logprobs, top_logprobs as {text: logprob}). */
export function fromCompletionLogprobs(lp) {
  if (!lp || !Array.isArray(lp.tokens)) return [];
  return lp.tokens.map((t, i) => ({
    t,
    lp: lp.token_logprobs[i],
    top: Object.entries((lp.top_logprobs && lp.top_logprobs[i]) || {}).sort((a, b) => b[1] - a[1]),
  }));
}

const pct = (lp) => {
  const p = Math.exp(lp) * 100;
  return p >= 99.95 ? '100%' : p >= 10 ? p.toFixed(1) + '%' : p >= 0.01 ? p.toFixed(2) + '%' : '<0.01%';
};
/** A token's text made visible: spaces, newlines and tabs as marks. */
const shown = (t) => (t === '' ? '∅' : t.replace(/ /g, '␣').replace(/\n/g, '↵').replace(/\t/g, '⇥'));
const bucket = (lp) => {
  const p = Math.exp(lp);
  return p >= 0.9 ? 'p4' : p >= 0.6 ? 'p3' : p >= 0.3 ? 'p2' : p >= 0.1 ? 'p1' : 'p0';
};

let pinned = null;

function popover() {
  return document.getElementById('token-popover');
}

function hide() {
  const pop = popover();
  pop.hidden = true;
  if (pinned) pinned.classList.remove('pinned');
  pinned = null;
}

function showFor(span, tok) {
  const pop = popover();
  pop.textContent = '';
  const head = document.createElement('div');
  head.className = 'tp-head';
  const code = document.createElement('code');
  code.textContent = shown(tok.t);
  const p = document.createElement('b');
  p.textContent = pct(tok.lp);
  head.append(code, ' ', p, ` · logprob ${tok.lp.toFixed(3)}`);
  pop.append(head);
  const table = document.createElement('table');
  table.dataset.testid = 'token-alternatives';
  for (const [t, lp] of tok.top) {
    const tr = document.createElement('tr');
    if (t === tok.t) tr.className = 'chosen';
    const c1 = document.createElement('td');
    const c = document.createElement('code');
    c.textContent = shown(t);
    c1.append(c);
    const c2 = document.createElement('td');
    c2.textContent = pct(lp);
    const bar = document.createElement('span');
    bar.className = 'tp-bar';
    bar.style.width = Math.max(1, Math.round(Math.exp(lp) * 60)) + 'px';
    c2.prepend(bar);
    const c3 = document.createElement('td');
    c3.className = 'muted';
    c3.textContent = lp.toFixed(3);
    tr.append(c1, c2, c3);
    table.append(tr);
  }
  if (!tok.top.length) {
    const none = document.createElement('div');
    none.className = 'muted';
    none.textContent = 'No alternatives requested (top alternatives: 0)';
    pop.append(none);
  } else pop.append(table);
  pop.hidden = false;
  const r = span.getBoundingClientRect();
  const w = pop.offsetWidth;
  const h = pop.offsetHeight;
  const left = Math.max(8, Math.min(window.innerWidth - w - 8, r.left));
  const below = r.bottom + 6 + h < window.innerHeight;
  pop.style.left = left + 'px';
  pop.style.top = (below ? r.bottom + 6 : Math.max(8, r.top - h - 6)) + 'px';
}

/** Renders `tokens` into `el` as spans with the probability popover. */
export function renderTokens(el, tokens) {
  el.textContent = '';
  el.classList.add('tokens');
  const frag = document.createDocumentFragment();
  tokens.forEach((tok, i) => {
    const s = document.createElement('span');
    s.className = 'tok ' + bucket(tok.lp);
    s.dataset.testid = 'token';
    s.dataset.i = String(i);
    s.textContent = tok.t;
    frag.append(s);
  });
  el.append(frag);
  const at = (e) => {
    const s = e.target.closest && e.target.closest('.tok');
    return s && el.contains(s) ? [s, tokens[Number(s.dataset.i)]] : [null, null];
  };
  el.onmouseover = (e) => {
    const [s, tok] = at(e);
    if (s && !pinned) showFor(s, tok);
  };
  el.onmouseleave = () => {
    if (!pinned) popover().hidden = true;
  };
  const pin = (s) => {
    if (pinned) pinned.classList.remove('pinned');
    pinned = s;
    s.classList.add('pinned');
    showFor(s, tokens[Number(s.dataset.i)]);
  };
  el.onclick = (e) => {
    const [s] = at(e);
    if (!s) return;
    e.stopPropagation();
    if (pinned === s) return hide();
    pin(s);
  };
  // the keyboard: focus the answer, then the arrow keys walk its tokens
  el.tabIndex = 0;
  el.setAttribute('aria-label', 'Answer, token by token: arrow keys show each token and its alternatives');
  el.onkeydown = (e) => {
    if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
    e.preventDefault();
    const spans = el.querySelectorAll('.tok');
    if (!spans.length) return;
    const i = pinned && el.contains(pinned) ? Number(pinned.dataset.i) + (e.key === 'ArrowRight' ? 1 : -1) : 0;
    pin(spans[Math.max(0, Math.min(spans.length - 1, i))]);
  };
}

document.addEventListener('click', (e) => {
  if (pinned && !popover().contains(e.target)) hide();
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && !popover().hidden) hide();
});
