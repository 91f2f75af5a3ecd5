// The request log line (vLLM's RequestLogger): id, prompt and token ids cut to
// --max-log-len, and the sampling parameters; written only for accepted requests
// and only with --enable-log-requests. The line stays small whatever the request
// holds: every part is cut, and the text is JSON-escaped (no raw newlines).
import type { SamplingParams } from '../../sampling_params.js';

/** --max-log-len's default: characters of a prompt (and token ids) shown per request. */
export const DEFAULT_MAX_LOG_LEN = 2048;

function cut(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}... (${s.length} characters)` : s;
}

export function formatRequestLog(requestId: string, prompt: string | null, promptTokenIds: readonly number[], params: SamplingParams, maxLogLen: number | null): string {
  const max = maxLogLen ?? Infinity;
  const text = prompt === null ? 'None' : JSON.stringify(prompt.length > max ? prompt.slice(0, max) : prompt);
  const ids = promptTokenIds.length > max ? promptTokenIds.slice(0, max) : promptTokenIds;
  const more = ids.length < promptTokenIds.length ? `, ... (${promptTokenIds.length} in all)` : '';
  const { n, temperature, topP, topK, minP, seed, maxTokens, minTokens, stop, stopTokenIds, logprobs, promptLogprobs, ignoreEos } = params;
  const shown = JSON.stringify({ n, temperature, topP, topK, minP, seed, maxTokens, minTokens, stop, stopTokenIds, logprobs, promptLogprobs, ignoreEos });
  return `Received request ${cut(requestId, 300)}: prompt: ${text}, params: ${cut(shown, Math.max(512, Math.min(max, 8192)))}, ` +
    `prompt_token_ids: [${ids.join(', ')}${more}]`;
}
