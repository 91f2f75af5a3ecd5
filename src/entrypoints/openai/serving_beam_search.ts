// use_beam_search on /v1/completions and /v1/chat/completions (vLLM's
// OpenAIServing.beam_search): the request's n is the beam width; each step's beams are
// one-token AsyncLLM requests beside everyone else's traffic, and the answer is one
// final RequestOutput with the n best beams as choices, best first (never streamed).
import { randomUUID } from 'node:crypto';
import { InvalidRequestError } from '../../errors.js';
import type { Logprob, RequestOutput } from '../../outputs.js';
import type { SamplingParams } from '../../sampling_params.js';
import { BeamSearchInstance, type BeamSearchParams, type BeamSearchSequence, beamStepParams, checkBeamSearchParams, runBeamSearch } from '../beam_search.js';
import type { ChatCompletionRequest, CompletionRequest } from './protocol.js';
import type { OpenAIServing, TokenizedPrompt } from './serving_engine.js';

type Req = CompletionRequest | ChatCompletionRequest;

/** vLLM's refusal of a streamed beam search, checked with the other shared validators. */
export function checkBeamSearchRequest(req: Req): void {
  if (req.use_beam_search && req.stream) {
    throw new InvalidRequestError('Streaming is not supported with beam search (use_beam_search); set stream to false.', 'stream');
  }
}

/** vLLM's to_beam_search_params: n is the width; maxTokens as resolved for the request's SamplingParams. */
export function beamSearchParamsOf(serving: OpenAIServing, req: Req, params: SamplingParams, promptLen: number): BeamSearchParams {
  return {
    beamWidth: req.n ?? 1,
    maxTokens: params.maxTokens ?? Math.max(1, serving.maxModelLen - promptLen),
    ignoreEos: req.ignore_eos ?? false,
    temperature: req.temperature ?? serving.engine.defaultSamplingOverrides.temperature ?? 1,
    lengthPenalty: req.length_penalty ?? 1,
    includeStopStrInOutput: req.include_stop_str_in_output ?? false,
    stop: req.stop === null || req.stop === undefined ? [] : typeof req.stop === 'string' ? [req.stop] : req.stop,
  };
}

async function lastOf(gen: AsyncGenerator<RequestOutput, void>): Promise<RequestOutput | null> {
  let last: RequestOutput | null = null;
  for await (const out of gen) last = out;
  return last;
}

/**
 * Starts a beam search for one prompt. The first step's request is submitted now, so
 * that a refused parameter (e.g. 2n logprobs above --max-logprobs) throws here.
 */
export function beamSearch(
  serving: OpenAIServing,
  requestId: string,
  prompt: TokenizedPrompt,
  params: BeamSearchParams,
  signal: AbortSignal,
  extra: { priority?: number | null; cacheSalt?: string | null },
  skipSpecialTokens = true,
): AsyncGenerator<RequestOutput, void, undefined> {
  try {
    checkBeamSearchParams(params);
  } catch (e) {
    throw new InvalidRequestError((e as Error).message, 'n');
  }
  const stepParams = beamStepParams(params);
  const tokenizer = serving.tokenizer;
  const eos = tokenizer.eosTokenId;
  const inst = new BeamSearchInstance(prompt.promptTokenIds, params, eos, tokenizer, serving.maxModelLen);
  const submit = (tokens: number[], id: string) =>
    serving.engine.generate({ promptTokenIds: tokens }, stepParams, id, { signal, priority: extra.priority ?? 0, cacheSalt: extra.cacheSalt ?? undefined });
  let pending: AsyncGenerator<RequestOutput, void> | null = submit(prompt.promptTokenIds, `${requestId}-${randomUUID()}-beam-0`);
  serving.logRequest(requestId, prompt, stepParams);
  let cached = 0;

  const step = async (seqs: number[][]): Promise<(Record<number, Logprob> | null)[]> => {
    const batch = `${requestId}-${randomUUID()}`;
    const gens = pending ? [pending] : seqs.map((t, i) => submit(t, `${batch}-beam-${i}`));
    const first = pending !== null;
    pending = null;
    const outs = await Promise.all(gens.map(lastOf));
    if (first) cached = outs[0]?.numCachedTokens ?? 0;
    return outs.map((o) => o?.outputs[0]?.logprobs?.[0] ?? null);
  };

  const finish = (b: BeamSearchSequence, index: number) => {
    const endsInEos = b.finishReason === 'stop' && b.stopReason === null && b.tokens.at(-1) === eos && !params.ignoreEos;
    const all = b.tokens.slice(prompt.promptTokenIds.length);
    const tokenIds = endsInEos && !params.includeStopStrInOutput ? all.slice(0, -1) : all;
    // NOTE: the EOS token is never part of the text (vLLM skips it even when kept in the ids).
    const text = b.text ?? tokenizer.decode(endsInEos ? all.slice(0, -1) : all, { skipSpecialTokens });
    return {
      index,
      text,
      tokenIds,
      cumulativeLogprob: b.cumLogprob,
      logprobs: b.logprobs.slice(0, tokenIds.length),
      finishReason: b.finishReason ?? 'length',
      stopReason: b.stopReason,
    };
  };

  return (async function* run(): AsyncGenerator<RequestOutput, void, undefined> {
    try {
      await runBeamSearch([inst], step);
    } finally {
      if (pending) await pending.return();
    }
    if (signal.aborted) return;
    yield {
      requestId,
      prompt: prompt.prompt,
      promptTokenIds: prompt.promptTokenIds,
      promptLogprobs: null,
      outputs: inst.best().map(finish),
      finished: true,
      numCachedTokens: cached,
    };
  })();
}
