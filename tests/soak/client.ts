// One soak request over node:http (keep-alive agent): reads a JSON or SSE answer
// into per-choice text, token ids and finish reasons, and aborts the request at its
// planned point by destroying the socket (as a client that goes away does).
import { Agent, request } from 'node:http';
import type { PlannedRequest } from './workload.js';

export interface ChoiceResult {
  text: string;
  tokenIds: number[] | null;
  finishReason: string | null;
}

export interface Outcome {
  /** HTTP status, or null when no response came. */
  status: number | null;
  choices: Map<number, ChoiceResult>;
  promptTokens: number | null;
  /** Parsed JSON body of a non-2xx answer. */
  errorBody: unknown;
  /** SSE: [DONE] arrived. */
  done: boolean;
  /** SSE: an {"error": ...} event arrived. */
  streamError: unknown;
  networkError: string | null;
  /** The client aborted it as planned (before it completed). */
  aborted: boolean;
  timedOut: boolean;
  ttftMs: number | null;
  e2eMs: number;
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export function newAgent(maxSockets: number): Agent {
  return new Agent({ keepAlive: true, maxSockets });
}

export function sendPlanned(base: string, p: PlannedRequest, agent: Agent, timeoutMs: number): Promise<Outcome> {
  const t0 = performance.now();
  const out: Outcome = {
    status: null, choices: new Map(), promptTokens: null, errorBody: null, done: false, streamError: null,
    networkError: null, aborted: false, timedOut: false, ttftMs: null, e2eMs: 0,
  };
  const choice = (i: number) => {
    let c = out.choices.get(i);
    if (!c) out.choices.set(i, (c = { text: '', tokenIds: null, finishReason: null }));
    return c;
  };
  return new Promise((resolve) => {
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(abortTimer);
      out.e2eMs = performance.now() - t0;
      resolve(out);
    };
    const body = Buffer.from(p.body, 'utf8');
    const req = request(`${base}${p.path}`, {
      method: p.method,
      agent,
      headers: { ...p.headers, 'content-length': body.length },
    });
    const kill = (why: 'abort' | 'timeout') => {
      if (settled) return;
      if (why === 'abort') out.aborted = true;
      else out.timedOut = true;
      req.destroy();
      finish();
    };
    const timer = setTimeout(() => kill('timeout'), timeoutMs);
    let abortTimer: NodeJS.Timeout | undefined;
    req.on('error', (e) => {
      if (!out.aborted && !out.timedOut && out.status === null) out.networkError = `${(e as NodeJS.ErrnoException).code ?? ''} ${e.message}`;
      finish();
    });
    req.on('response', (res) => {
      out.status = res.statusCode ?? null;
      res.setEncoding('utf8');
      let buf = '';
      let events = 0;
      const isSse = (res.headers['content-type'] ?? '').startsWith('text/event-stream');
      res.on('data', (d: string) => {
        buf += d;
        if (!isSse) return;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const data = buf.slice(0, i).replace(/^data: /, '');
          buf = buf.slice(i + 2);
          if (data === '[DONE]') {
            out.done = true;
            continue;
          }
          const e = JSON.parse(data) as Json;
          if (e.error) {
            out.streamError = e.error;
            continue;
          }
          if (e.usage) out.promptTokens = e.usage.prompt_tokens;
          for (const c of (e.choices ?? []) as Json[]) {
            const ch = choice(c.index);
            const text = p.api === 'chat' ? (c.delta?.content ?? '') : (c.text ?? '');
            if (text !== '' && out.ttftMs === null) out.ttftMs = performance.now() - t0;
            ch.text += text;
            if (c.token_ids) ch.tokenIds = (ch.tokenIds ?? []).concat(c.token_ids);
            if (c.finish_reason) ch.finishReason = c.finish_reason;
          }
          events++;
          if (p.abort?.mode === 'mid-stream' && events >= p.abort.afterEvents) kill('abort');
        }
      });
      res.on('end', () => {
        if (!isSse && buf !== '') {
          try {
            const j = JSON.parse(buf) as Json;
            if ((out.status ?? 0) >= 400) out.errorBody = j;
            else {
              out.promptTokens = j.usage?.prompt_tokens ?? null;
              for (const c of (j.choices ?? []) as Json[]) {
                const ch = choice(c.index);
                ch.text = p.api === 'chat' ? (c.message?.content ?? '') : c.text;
                ch.tokenIds = c.token_ids ?? null;
                ch.finishReason = c.finish_reason ?? null;
              }
            }
          } catch (e) {
            out.errorBody = `unparsable body (${(e as Error).message}): ${buf.slice(0, 200)}`;
          }
        }
        finish();
      });
      res.on('error', () => finish());
    });

    if (p.abort?.mode === 'upload') {
      // Half the body, then the connection drops: the server must give up on it.
      req.write(body.subarray(0, Math.floor(body.length / 2)));
      abortTimer = setTimeout(() => kill('abort'), 20);
      return;
    }
    req.end(body);
    if (p.abort && (p.abort.mode === 'early' || p.abort.mode === 'mid-response')) {
      abortTimer = setTimeout(() => kill('abort'), p.abort.afterMs);
    }
  });
}
