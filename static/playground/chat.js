// The chat transcript: messages as markdown (or, for answers with token
// probabilities, token by token), each with its actions (copy; edit a user message
// and regenerate from there; regenerate an answer) and its numbers; the streamed
// answer; tool calls; the conversation saved after every change.
import { statsOf, streamRequest } from './api.js';
import { copyButton, renderMarkdown } from './markdown.js';
import { samplingParams, systemPrompt, tokenViewOn } from './settings.js';
import { saveConversation } from './store.js';
import { fromChatLogprobs, renderTokens } from './tokens.js';

const $ = (id) => document.getElementById(id);
const fmtInt = new Intl.NumberFormat('en-US');

/**
 * `app`: { model: () => id | null, begin() -> AbortController, end(), keyRefused(),
 * scroll: { nearBottom(), down() }, changed(conv) (the sidebar's list) }.
 */
export function createChat(app) {
  let conv = null;
  const list = $('messages');

  /** The request's messages: the system prompt, then the conversation. */
  function apiMessages() {
    const out = [];
    const sys = systemPrompt();
    if (sys) out.push({ role: 'system', content: sys });
    for (const m of conv.messages) {
      if (m.role === 'assistant') {
        const a = { role: 'assistant', content: m.content };
        if (m.tool_calls && m.tool_calls.length) a.tool_calls = m.tool_calls;
        out.push(a);
      } else if (m.role === 'tool') out.push({ role: 'tool', tool_call_id: m.tool_call_id, content: m.content });
      else out.push({ role: 'user', content: m.content });
    }
    return out;
  }

  /** The tool calls of the last answer that no tool message has answered yet. */
  function pendingToolCalls() {
    let i = conv.messages.length - 1;
    const answered = new Set();
    while (i >= 0 && conv.messages[i].role === 'tool') answered.add(conv.messages[i--].tool_call_id);
    const last = conv.messages[i];
    if (!last || last.role !== 'assistant' || !last.tool_calls) return [];
    return last.tool_calls.filter((c) => !answered.has(c.id));
  }

  function updateComposer() {
    const pending = conv ? pendingToolCalls() : [];
    $('tool-reply').hidden = pending.length === 0;
    if (pending.length) $('tool-reply-name').textContent = `${pending[0].function.name} (${pending[0].id})`;
  }

  async function persist() {
    conv.updated = Date.now();
    if (conv.title === 'New chat') {
      const first = conv.messages.find((m) => m.role === 'user');
      if (first) conv.title = first.content.replace(/\s+/g, ' ').trim().slice(0, 48) || 'New chat';
    }
    await saveConversation(conv);
    app.changed(conv);
  }

  function renderStats(el, s) {
    el.textContent = '';
    const add = (testid, label, value, cls) => {
      const span = document.createElement('span');
      span.dataset.testid = testid;
      if (cls) span.className = cls;
      if (value !== undefined) {
        const b = document.createElement('b');
        b.textContent = value;
        span.append(b, ' ' + label);
      } else span.textContent = label;
      el.append(span);
    };
    add('stat-tokens', 'tokens', (s.exact ? '' : '≈') + fmtInt.format(s.tokens));
    if (s.prompt !== null && s.prompt !== undefined) add('stat-prompt-tokens', 'prompt', fmtInt.format(s.prompt));
    if (s.ttftMs !== undefined) add('stat-ttft', 'ms to first token', fmtInt.format(s.ttftMs));
    if (s.rate !== undefined) add('stat-rate', 'tok/s', s.rate.toFixed(1));
    add('stat-time', 's', s.seconds.toFixed(2));
    if (s.finish === 'stopped') add('stat-finish', 'stopped', undefined, 'stopped');
    else if (s.finish) add('stat-finish', s.finish === 'length' ? 'hit max tokens' : s.finish === 'stop' ? 'finished' : s.finish);
  }

  function toolCallsEl(calls) {
    const box = document.createElement('div');
    box.className = 'tool-calls';
    for (const c of calls) {
      const d = document.createElement('div');
      d.className = 'tool-call';
      d.dataset.testid = 'tool-call';
      const head = document.createElement('div');
      head.className = 'tool-head';
      const name = document.createElement('b');
      name.textContent = c.function.name || '…';
      head.append('Tool call ', name, ' ');
      const id = document.createElement('span');
      id.className = 'muted';
      id.textContent = c.id || '';
      head.append(id);
      const args = document.createElement('pre');
      let text = c.function.arguments || '';
      try { text = JSON.stringify(JSON.parse(text), null, 2); } catch { /* still streaming, or not JSON */ }
      args.textContent = text;
      d.append(head, args);
      box.append(d);
    }
    return box;
  }

  /** Fills a message's bubble: its tokens (when it has them and the view shows them) or its markdown. */
  function fillBubble(bubble, m) {
    bubble.classList.remove('tokens');
    bubble.removeAttribute('tabindex');
    bubble.onkeydown = null;
    if (m.tokens && m.tokens.length && m.view !== 'markdown') renderTokens(bubble, m.tokens);
    else renderMarkdown(bubble, m.content);
  }

  function actionButton(label, testid, onClick) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'mini';
    b.textContent = label;
    b.dataset.testid = testid;
    b.addEventListener('click', onClick);
    return b;
  }

  function messageEl(m, i) {
    const li = document.createElement('li');
    li.className = 'msg ' + m.role;
    li.dataset.testid = 'message-' + m.role;
    const who = document.createElement('div');
    who.className = 'role';
    who.textContent = m.role === 'user' ? 'You' : m.role === 'tool' ? 'Tool result' : 'Assistant';
    li.append(who);
    if (m.reasoning) {
      const d = document.createElement('details');
      d.className = 'reasoning';
      const s = document.createElement('summary');
      s.textContent = 'Reasoning';
      const p = document.createElement('div');
      p.textContent = m.reasoning;
      d.append(s, p);
      li.append(d);
    }
    const bubble = document.createElement('div');
    bubble.className = 'bubble md';
    bubble.dataset.testid = m.role + '-text';
    fillBubble(bubble, m);
    if (m.content || !m.tool_calls) li.append(bubble);
    if (m.tool_calls && m.tool_calls.length) li.append(toolCallsEl(m.tool_calls));
    if (m.stats) {
      const stats = document.createElement('div');
      stats.className = 'stats';
      stats.dataset.testid = 'message-stats';
      renderStats(stats, m.stats);
      li.append(stats);
    }
    if (i === undefined) return li;
    const actions = document.createElement('div');
    actions.className = 'msg-actions';
    actions.append(copyButton(() => m.content, 'Copy', 'copy-message'));
    if (m.role === 'user') actions.append(actionButton('Edit', 'edit-message', () => startEdit(li, i)));
    if (m.role === 'assistant') actions.append(actionButton('Regenerate', 'regenerate', () => regenerateAt(i)));
    if (m.tokens && m.tokens.length) {
      actions.append(actionButton(m.view === 'markdown' ? 'Show tokens' : 'Show markdown', 'toggle-tokens', async () => {
        m.view = m.view === 'markdown' ? 'tokens' : 'markdown';
        await persist();
        render();
      }));
    }
    li.append(actions);
    return li;
  }

  function render() {
    list.textContent = '';
    conv.messages.forEach((m, i) => list.append(messageEl(m, i)));
    $('chat-empty').hidden = conv.messages.length > 0;
    updateComposer();
  }

  function errorBubble(text) {
    const li = document.createElement('li');
    li.className = 'msg error';
    li.dataset.testid = 'message-error';
    li.setAttribute('role', 'alert');
    const b = document.createElement('div');
    b.className = 'bubble';
    b.textContent = text;
    li.append(b);
    list.append(li);
    app.scroll.down();
  }

  function startEdit(li, i) {
    if (app.busy()) return;
    const m = conv.messages[i];
    const box = document.createElement('div');
    box.className = 'edit';
    const ta = document.createElement('textarea');
    ta.value = m.content;
    ta.rows = Math.min(12, m.content.split('\n').length + 1);
    ta.dataset.testid = 'edit-input';
    ta.setAttribute('aria-label', 'Edit the message');
    const save = actionButton('Save & regenerate', 'edit-save', async () => {
      if (!ta.value.trim()) return;
      conv.messages = [...conv.messages.slice(0, i), { role: 'user', content: ta.value }];
      await persist();
      render();
      await generate();
    });
    save.classList.add('primary');
    const cancel = actionButton('Cancel', 'edit-cancel', () => render());
    ta.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); save.click(); }
      if (e.key === 'Escape') { e.stopPropagation(); render(); }
    });
    const row = document.createElement('div');
    row.className = 'msg-actions';
    row.append(save, cancel);
    box.append(ta, row);
    li.textContent = '';
    li.append(box);
    ta.focus();
  }

  async function regenerateAt(i) {
    if (app.busy()) return;
    conv.messages = conv.messages.slice(0, i);
    await persist();
    render();
    await generate();
  }

  /** Streams the model's answer to the conversation as it stands and appends it. */
  async function generate() {
    let params;
    try {
      params = samplingParams('chat');
    } catch (e) {
      errorBubble(e.message);
      return { ok: false };
    }
    const m = { role: 'assistant', content: '' };
    const withTokens = tokenViewOn();
    if (withTokens) m.tokens = [];
    const calls = [];
    const li = messageEl(m);
    li.classList.add('streaming');
    li.setAttribute('aria-busy', 'true');
    list.append(li);
    $('chat-empty').hidden = true;
    app.scroll.down();
    let scheduled = false;
    const paint = () => {
      scheduled = false;
      const follow = app.scroll.nearBottom();
      const fresh = messageEl({ ...m, tool_calls: calls.length ? calls : undefined });
      li.replaceChildren(...fresh.childNodes);
      if (follow) app.scroll.down();
    };
    const ctrl = app.begin();
    const body = { model: app.model(), messages: apiMessages(), ...params };
    const r = await streamRequest('v1/chat/completions', body, ctrl, (choice) => {
      const d = choice.delta || {};
      let got = false;
      if (d.content) { m.content += d.content; got = true; }
      const reasoning = d.reasoning_content || d.reasoning;
      if (reasoning) { m.reasoning = (m.reasoning || '') + reasoning; got = true; }
      for (const tc of d.tool_calls || []) {
        const c = (calls[tc.index ?? calls.length] ??= { id: '', type: 'function', function: { name: '', arguments: '' } });
        if (tc.id) c.id = tc.id;
        if (tc.function && tc.function.name) c.function.name += tc.function.name;
        if (tc.function && tc.function.arguments) c.function.arguments += tc.function.arguments;
        got = true;
      }
      if (withTokens && choice.logprobs && choice.logprobs.content) m.tokens.push(...fromChatLogprobs(choice.logprobs.content));
      if (got && !scheduled) {
        scheduled = true;
        document.hidden ? setTimeout(paint, 250) : requestAnimationFrame(paint);
      }
      return got;
    });
    app.end();
    li.remove();
    if (r.status === 401) {
      app.keyRefused();
      return { ok: false, refused: true };
    }
    // NOTE: an answer is kept even when empty (e.g. max tokens spent inside an unfinished tool call), with its numbers.
    const produced = m.content || m.reasoning || calls.length;
    if (produced || !r.error) {
      if (calls.length) m.tool_calls = calls;
      if (withTokens && !m.tokens.length) delete m.tokens;
      m.stats = statsOf(r);
      conv.messages.push(m);
      await persist();
      const follow = app.scroll.nearBottom();
      list.append(messageEl(m, conv.messages.length - 1));
      updateComposer();
      if (follow) app.scroll.down();
    }
    if (r.error) errorBubble(r.error);
    return { ok: !r.error };
  }

  /** Sends the composer's text: as the user's message, or as the result of the pending tool call. */
  async function send(text) {
    try {
      samplingParams('chat');
    } catch (e) {
      // NOTE: a settings box that is not JSON: nothing is sent, the text stays in the composer.
      $('input').value = text;
      errorBubble(e.message);
      return;
    }
    const pending = pendingToolCalls();
    const asTool = pending.length > 0 && $('as-tool').checked;
    conv.messages.push(asTool ? { role: 'tool', tool_call_id: pending[0].id, content: text } : { role: 'user', content: text });
    await persist();
    render();
    app.scroll.down();
    if (asTool && pending.length > 1) return; // the other calls' results first
    const r = await generate();
    if (r.refused && !asTool) {
      // Nothing was generated: put the message back for a retry once a key is entered.
      conv.messages.pop();
      await persist();
      render();
      $('input').value = text;
    }
  }

  return {
    show(c) {
      conv = c;
      render();
    },
    current: () => conv,
    send,
  };
}
