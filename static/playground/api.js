// The playground's calls to the server: the API key (kept in this tab only), error
// texts, and a streamed POST read as server-sent events.
const KEY_STORE = 'vllm-ts.apiKey';

export const store = {
  get(area, k) { try { return window[area].getItem(k); } catch { return null; } },
  set(area, k, v) { try { v === null ? window[area].removeItem(k) : window[area].setItem(k, v); } catch { /* private mode */ } },
};

export const apiKey = () => store.get('sessionStorage', KEY_STORE) || '';
export const setApiKey = (key) => store.set('sessionStorage', KEY_STORE, key || null);

export function headers(extra = {}) {
  const h = { ...extra };
  const key = apiKey();
  if (key) h.authorization = 'Bearer ' + key;
  return h;
}

/** The server's error message of a failed response (OpenAI's error body), or its status. */
export async function errorText(res) {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text);
    if (body && body.error && body.error.message) return body.error.message;
  } catch { /* not JSON */ }
  return `HTTP ${res.status}${text ? ': ' + text.slice(0, 200) : ''}`;
}

/** Yields the data of each server-sent event of a fetch response. */
async function* sseData(res) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
      if (data) yield data;
    }
  }
}

/**
 * POSTs a streaming request; `onChoice(choice)` sees each chunk's first choice.
 * Returns { status, error, stopped, finish, usage, pieces, t0, tFirst, tEnd }, where
 * `pieces` counts the chunks that carried output (about one per token).
 * `ctrl` is the AbortController that Stop aborts.
 */
export async function streamRequest(url, body, ctrl, onChoice) {
  const r = { status: 0, error: null, stopped: false, finish: null, usage: null, pieces: 0, t0: performance.now(), tFirst: 0, tEnd: 0 };
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: headers({ 'content-type': 'application/json' }),
      body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
      signal: ctrl.signal,
    });
    r.status = res.status;
    if (!res.ok) {
      r.error = await errorText(res);
      return r;
    }
    for await (const data of sseData(res)) {
      if (data === '[DONE]') break;
      const ev = JSON.parse(data);
      if (ev.error) throw new Error(ev.error.message || 'the server reported an error');
      if (ev.usage) r.usage = ev.usage;
      const choice = ev.choices && ev.choices[0];
      if (!choice) continue;
      if (onChoice(choice)) {
        if (!r.tFirst) r.tFirst = performance.now();
        r.pieces++;
      }
      if (choice.finish_reason) r.finish = choice.finish_reason;
    }
  } catch (e) {
    if (ctrl.signal.aborted) r.stopped = true;
    else r.error = e instanceof TypeError ? 'Lost the connection to the server' : e.message;
  } finally {
    r.tEnd = performance.now();
  }
  return r;
}

/** The numbers of one generation, kept with its message: tokens, prompt tokens, ms to first token, tokens/s, seconds, finish. */
export function statsOf(r) {
  // NOTE: when a stream is stopped no usage arrives; the streamed pieces (about one per token) stand in.
  const s = { tokens: r.usage ? r.usage.completion_tokens : r.pieces, exact: !!r.usage, prompt: r.usage ? r.usage.prompt_tokens : null };
  if (r.tFirst) {
    s.ttftMs = Math.round(r.tFirst - r.t0);
    const decodeS = (r.tEnd - r.tFirst) / 1000;
    s.rate = s.tokens > 1 && decodeS > 0 ? (s.tokens - 1) / decodeS : s.tokens / ((r.tEnd - r.t0) / 1000);
  }
  s.seconds = (r.tEnd - r.t0) / 1000;
  s.finish = r.stopped ? 'stopped' : r.finish;
  return s;
}
