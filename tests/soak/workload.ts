// The soak's requests, planned up front from a seed: chat and completions,
// streamed or not, greedy / seeded / unseeded sampling with n up to 4, prompts up
// to the context limit, a share the client aborts at a random point and a share
// that is malformed (each with the 4xx it must get).
import type { PromptType } from '../../src/engine/processor.js';
import { seededRandom } from '../../src/metrics/serving_benchmark.js';
import type { SamplingParamsInput } from '../../src/sampling_params.js';
import type { ChatMessage, Tokenizer } from '../../src/tokenizer/tokenizer.js';

export type Api = 'completion' | 'chat';
export type Sampling = 'greedy' | 'seeded' | 'random';
/** upload: the connection drops mid-body; early: right after sending; mid-stream: after k SSE events; mid-response: while waiting for a non-streamed answer. */
export type AbortMode = 'upload' | 'early' | 'mid-stream' | 'mid-response';

export interface PlannedRequest {
  index: number;
  kind: 'valid' | 'abort' | 'malformed';
  api: Api;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  stream: boolean;
  n: number;
  sampling: Sampling;
  returnTokenIds: boolean;
  /** usage.prompt_tokens the server must report. */
  promptTokens: number;
  /** What LLM.generate runs alone to get the expected output (greedy and seeded requests). */
  offline: { prompt: PromptType; params: SamplingParamsInput } | null;
  abort: { mode: AbortMode; afterEvents: number; afterMs: number } | null;
  malformed: { what: string; status: number } | null;
}

export interface WorkloadOptions {
  requests: number;
  seed: number;
  maxModelLen: number;
  apiKey: string;
  /** The server's --max-request-body-bytes. */
  maxBodyBytes: number;
  abortFraction: number;
  malformedFraction: number;
  /** Largest max_tokens of an ordinary request (near-limit prompts take what room is left). */
  maxTokens: number;
}

const UNICODE = [' 😀', ' 你好', ' Ω≈ç√', ' naïve café', ' \u00e9\u0301', ' 🙏🏽'];

export function planWorkload(tokenizer: Tokenizer, o: WorkloadOptions): PlannedRequest[] {
  const rand = seededRandom(o.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const words = vocabWords(tokenizer);
  const auth = { authorization: `Bearer ${o.apiKey}`, 'content-type': 'application/json' };
  const text = (count: number) => {
    let s = '';
    for (let i = 0; i < count; i++) s += rand() < 0.01 ? pick(UNICODE) : pick(words);
    return s;
  };

  const plan: PlannedRequest[] = [];
  for (let index = 0; index < o.requests; index++) {
    const r = rand();
    const kind = r < o.malformedFraction ? 'malformed' : r < o.malformedFraction + o.abortFraction ? 'abort' : 'valid';
    const api: Api = rand() < 0.5 ? 'chat' : 'completion';
    if (kind === 'malformed') {
      plan.push(malformedRequest(index, api, rand, o, words));
      continue;
    }
    const sr = rand();
    const sampling: Sampling = sr < 0.5 ? 'greedy' : sr < 0.85 ? 'seeded' : 'random';
    const n = sampling === 'greedy' ? 1 : pick([1, 1, 1, 2, 2, 3, 4]);
    // NOTE: prompt lengths are skewed short so that the run stays bounded, with one
    // in ten right at the context limit (prompt + max_tokens == max_model_len).
    const lr = rand();
    const nearLimit = lr < 0.1;
    const target = nearLimit ? int(o.maxModelLen - 64, o.maxModelLen - 2) : lr < 0.7 ? int(4, 64) : int(64, 256);
    let maxTokens = nearLimit ? o.maxModelLen - target : int(1, o.maxTokens);

    let wire: Record<string, unknown>;
    let prompt: PromptType;
    let promptTokens: number;
    if (api === 'completion') {
      if (rand() < 0.3) {
        const ids = Array.from({ length: target }, () => int(3, tokenizer.vocabSize - 1));
        wire = { prompt: ids };
        prompt = { promptTokenIds: ids };
        promptTokens = ids.length;
      } else {
        let count = target;
        let s = text(count);
        let ids = tokenizer.encode(s, { addSpecialTokens: true });
        while (ids.length + maxTokens > o.maxModelLen) {
          count = Math.max(1, count - (ids.length + maxTokens - o.maxModelLen));
          s = text(count);
          ids = tokenizer.encode(s, { addSpecialTokens: true });
        }
        wire = { prompt: s };
        prompt = { promptTokenIds: ids, prompt: s };
        promptTokens = ids.length;
      }
    } else {
      const system = rand() < 0.3 ? text(int(3, 12)) : null;
      const render = (count: number) => {
        const messages: ChatMessage[] = [...(system ? [{ role: 'system', content: system.trim() }] : []), { role: 'user', content: text(count).trim() }];
        const rendered = tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true });
        return { messages, rendered, ids: tokenizer.encode(rendered, { addSpecialTokens: false }) };
      };
      let count = Math.max(1, target - 10);
      let c = render(count);
      while (c.ids.length + maxTokens > o.maxModelLen) {
        if (count === 1) maxTokens = o.maxModelLen - c.ids.length;
        count = Math.max(1, count - (c.ids.length + maxTokens - o.maxModelLen));
        c = render(count);
      }
      wire = { messages: c.messages };
      prompt = { promptTokenIds: c.ids, prompt: c.rendered };
      promptTokens = c.ids.length;
    }

    if (nearLimit) maxTokens = o.maxModelLen - promptTokens;
    const params: SamplingParamsInput = { maxTokens, n, topP: 1 };
    if (sampling === 'greedy') params.temperature = 0;
    else {
      params.temperature = pick([0.7, 1.0]);
      params.topP = pick([1, 0.9]);
      if (rand() < 0.3) params.topK = 40;
      if (sampling === 'seeded') params.seed = int(0, 1_000_000);
    }
    if (rand() < 0.25) params.ignoreEos = true;
    if (rand() < 0.1) params.stop = [pick([' the', ' LORD', ' and'])];
    const logprobs = rand() < 0.1;
    const returnTokenIds = rand() < 0.5;
    let stream = rand() < 0.5;

    let abort: PlannedRequest['abort'] = null;
    if (kind === 'abort') {
      const mode = pick<AbortMode>(['upload', 'early', 'early', 'mid-stream', 'mid-stream', 'mid-response', 'mid-response']);
      if (mode === 'mid-stream') stream = true;
      if (mode === 'mid-response') stream = false;
      abort = { mode, afterEvents: int(1, 12), afterMs: mode === 'early' ? int(0, 300) : int(50, 2000) };
    }

    Object.assign(wire, {
      max_tokens: maxTokens,
      n,
      temperature: params.temperature,
      top_p: params.topP,
      ...(params.topK !== undefined ? { top_k: params.topK } : {}),
      ...(params.seed !== undefined ? { seed: params.seed } : {}),
      ...(params.ignoreEos ? { ignore_eos: true } : {}),
      ...(params.stop ? { stop: params.stop } : {}),
      ...(logprobs ? (api === 'chat' ? { logprobs: true, top_logprobs: 2 } : { logprobs: 2 }) : {}),
      ...(returnTokenIds ? { return_token_ids: true } : {}),
      ...(stream ? { stream: true, ...(rand() < 0.5 ? { stream_options: { include_usage: true } } : {}) } : {}),
    });
    if (logprobs) params.logprobs = 2;
    plan.push({
      index,
      kind,
      api,
      method: 'POST',
      path: api === 'chat' ? '/v1/chat/completions' : '/v1/completions',
      headers: { ...auth },
      body: JSON.stringify(wire),
      stream,
      n,
      sampling,
      returnTokenIds,
      promptTokens,
      offline: sampling !== 'random' && kind === 'valid' ? { prompt, params } : null,
      abort,
      malformed: null,
    });
  }
  return plan;
}

/** Whole-word vocabulary entries (' the', ' LORD', ...): one token each. */
function vocabWords(tokenizer: Tokenizer): string[] {
  const words: string[] = [];
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    const s = tokenizer.decode([id]);
    if (/^ [a-zA-Z]{3,}$/.test(s)) words.push(s);
  }
  return words;
}

type Rand = () => number;

function malformedRequest(index: number, api: Api, rand: Rand, o: WorkloadOptions, words: string[]): PlannedRequest {
  const headers: Record<string, string> = { authorization: `Bearer ${o.apiKey}`, 'content-type': 'application/json' };
  const messages = [{ role: 'user', content: 'Who art thou?' }];
  const base = (extra: object) => JSON.stringify(api === 'chat' ? { messages, max_tokens: 4, ...extra } : { prompt: 'In the beginning', max_tokens: 4, ...extra });
  const stream = rand() < 0.3 ? { stream: true } : {};
  type Case = [what: string, status: number, body: string, patch?: { path?: string; method?: string; headers?: Record<string, string> }];
  const cases: Case[] = [
    ['invalid JSON', 400, '{"prompt": "In the beginning", "max_tokens": '],
    ['a JSON array', 400, '[1, 2, 3]'],
    ['an empty body', 400, ''],
    ['temperature of the wrong type', 400, base({ temperature: 'hot', ...stream })],
    ['unknown model', 404, base({ model: 'gpt-4o', ...stream })],
    ['temperature out of range', 400, base({ temperature: 9, ...stream })],
    ['n > 1 with greedy sampling', 400, base({ n: 3, temperature: 0 })],
    ['n = 0', 400, base({ n: 0 })],
    ['negative max_tokens', 400, base({ max_tokens: -5, ...stream })],
    ['max_tokens over the context', 400, base({ max_tokens: o.maxModelLen + 1 })],
    ['prompt over the context', 400, JSON.stringify({ prompt: Array.from({ length: o.maxModelLen + 8 }, (_, i) => 5 + (i % 100)), max_tokens: 1, ...stream }), { path: '/v1/completions' }],
    ['out-of-vocabulary token id', 400, JSON.stringify({ prompt: [5, 6, 99_999], max_tokens: 1 }), { path: '/v1/completions' }],
    ['too many logprobs', 400, JSON.stringify({ prompt: 'In the beginning', logprobs: 50 }), { path: '/v1/completions' }],
    ['stream_options without stream', 400, base({ stream_options: { include_usage: true } })],
    ['empty messages', 400, JSON.stringify({ messages: [], ...stream }), { path: '/v1/chat/completions' }],
    ['an image part', 400, JSON.stringify({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://x/y.png' } }] }] }), { path: '/v1/chat/completions' }],
    ['untrusted chat_template', 400, JSON.stringify({ messages, chat_template: '{{ messages }}' }), { path: '/v1/chat/completions' }],
    ['a form body', 415, 'prompt=hello', { headers: { 'content-type': 'application/x-www-form-urlencoded' } }],
    ['a body over the limit', 413, JSON.stringify({ prompt: words.join('').repeat(Math.ceil(o.maxBodyBytes / words.join('').length) + 1) })],
    ['a wrong API key', 401, base({}), { headers: { authorization: `Bearer ${o.apiKey}x` } }],
    ['no API key', 401, base({}), { headers: { authorization: '' } }],
    ['a wrong method', 405, '', { method: 'PUT' }],
    ['no such route', 404, base({}), { path: '/v1/completion' }],
  ];
  const [what, status, body, patch = {}] = cases[Math.floor(rand() * cases.length)];
  const path = patch.path ?? (api === 'chat' ? '/v1/chat/completions' : '/v1/completions');
  const allHeaders = { ...headers, ...patch.headers };
  if (allHeaders.authorization === '') delete allHeaders.authorization;
  return {
    index,
    kind: 'malformed',
    api: path.includes('chat') ? 'chat' : 'completion',
    method: patch.method ?? 'POST',
    path,
    headers: allHeaders,
    body,
    stream: false,
    n: 1,
    sampling: 'greedy',
    returnTokenIds: false,
    promptTokens: 0,
    offline: null,
    abort: null,
    malformed: { what, status },
  };
}
