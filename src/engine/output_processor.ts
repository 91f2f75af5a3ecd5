// OutputProcessor: EngineCoreOutputs -> RequestOutputs. Detokenizes incrementally,
// applies stop strings (the core is then told to abort those requests), turns
// logprobs into vLLM's {tokenId: Logprob} maps and fans n > 1 children back in.
import type { CompletionOutput, Logprob, PromptLogprobs, RequestOutput, SampleLogprobs } from '../outputs.js';
import type { SamplingParams } from '../sampling_params.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { IncrementalDetokenizer } from './detokenizer.js';
import { ParentRequest } from './parallel_sampling.js';
import type { EngineCoreOutput, EngineCoreRequest, FinishReason, PositionLogprobs } from '../core/types.js';

interface RequestState {
  requestId: string;
  parent: ParentRequest | null;
  index: number;
  params: SamplingParams;
  promptText: string | null;
  promptTokenIds: number[];
  detokenizer: IncrementalDetokenizer | null;
  tokenIds: number[];
  logprobs: SampleLogprobs | null;
  cumulativeLogprob: number | null;
  promptLogprobs: PromptLogprobs | null;
  numCachedTokens: number;
  arrivalTime: number;
  firstTokenTime: number | null;
  /** Tokens already handed out (delta mode). */
  sentTokens: number;
  sentLogprobs: number;
}

export class OutputProcessor {
  private readonly states = new Map<string, RequestState>();

  constructor(readonly tokenizer: Tokenizer) {}

  addRequest(request: EngineCoreRequest, promptText: string | null, parent: ParentRequest | null = null, index = 0): void {
    const p = request.samplingParams;
    this.states.set(request.requestId, {
      requestId: request.requestId,
      parent,
      index,
      params: p,
      promptText,
      promptTokenIds: request.promptTokenIds,
      detokenizer: p.detokenize ? new IncrementalDetokenizer(this.tokenizer, request.promptTokenIds, p) : null,
      tokenIds: [],
      logprobs: p.logprobs !== null ? [] : null,
      cumulativeLogprob: p.logprobs !== null ? 0 : null,
      promptLogprobs: p.promptLogprobs !== null ? [null] : null,
      numCachedTokens: 0,
      arrivalTime: request.arrivalTime,
      firstTokenTime: null,
      sentTokens: 0,
      sentLogprobs: 0,
    });
  }

  hasUnfinishedRequests(): boolean {
    return this.states.size > 0;
  }

  get numUnfinishedRequests(): number {
    return this.states.size;
  }

  /** Forgets requests (aborted by the user); returns the ids that were known. */
  abortRequests(ids: Iterable<string>): string[] {
    const known: string[] = [];
    for (const id of ids) if (this.states.delete(id)) known.push(id);
    return known;
  }

  processOutputs(outputs: EngineCoreOutput[]): { requestOutputs: RequestOutput[]; reqsToAbort: string[] } {
    const requestOutputs: RequestOutput[] = [];
    const reqsToAbort: string[] = [];
    const now = Date.now() / 1000;
    for (const o of outputs) {
      const s = this.states.get(o.requestId);
      if (!s) continue; // aborted meanwhile
      s.numCachedTokens = o.numCachedTokens;
      if (o.pooledOutput) {
        this.states.delete(o.requestId);
        requestOutputs.push({
          requestId: o.requestId, prompt: s.promptText, promptTokenIds: s.promptTokenIds, promptLogprobs: null,
          outputs: [], finished: true, numCachedTokens: o.numCachedTokens, embedding: o.pooledOutput,
        });
        continue;
      }
      if (o.newTokenIds.length > 0 && s.firstTokenTime === null) s.firstTokenTime = now;
      if (o.newPromptLogprobs && s.promptLogprobs) {
        for (const pl of o.newPromptLogprobs) s.promptLogprobs.push(this.toLogprobMap(pl));
      }
      let finishReason: FinishReason | null = o.finishReason;
      let stopReason: number | string | null = o.stopReason;
      for (let i = 0; i < o.newTokenIds.length; i++) {
        s.tokenIds.push(o.newTokenIds[i]);
        const lp = o.newLogprobs?.[i];
        if (lp && s.logprobs) {
          s.logprobs.push(this.toLogprobMap(lp));
          s.cumulativeLogprob = (s.cumulativeLogprob ?? 0) + lp.logprobs[0];
        }
        // A token that ended the request in the core (EOS, a stop token id) adds no text.
        const stopTerminated = o.finishReason === 'stop' && i === o.newTokenIds.length - 1;
        const stop = s.detokenizer?.update([o.newTokenIds[i]], stopTerminated) ?? null;
        if (stop !== null) {
          // A stop string ends the request here; the core is told to abort it.
          if (!finishReason) reqsToAbort.push(o.requestId);
          finishReason = 'stop';
          stopReason = stop;
          break;
        }
      }
      const finished = finishReason !== null;
      const out = this.makeOutput(s, finished, finishReason, stopReason);
      if (finished) this.states.delete(o.requestId);
      if (out) requestOutputs.push(out);
    }
    return { requestOutputs, reqsToAbort };
  }

  private makeOutput(s: RequestState, finished: boolean, finishReason: FinishReason | null, stopReason: number | string | null): RequestOutput | null {
    const kind = s.params.outputKind;
    if (kind === 'final_only' && !finished) return null;
    const delta = kind === 'delta';
    const text = s.detokenizer ? s.detokenizer.getNextOutputText(finished, delta) : '';
    if (delta && !finished && text === '' && s.tokenIds.length === s.sentTokens) return null;
    const completion: CompletionOutput = {
      index: s.index,
      text,
      tokenIds: delta ? s.tokenIds.slice(s.sentTokens) : [...s.tokenIds],
      cumulativeLogprob: s.cumulativeLogprob,
      logprobs: s.logprobs ? (delta ? s.logprobs.slice(s.sentLogprobs) : [...s.logprobs]) : null,
      finishReason,
      stopReason,
    };
    s.sentTokens = s.tokenIds.length;
    s.sentLogprobs = s.logprobs?.length ?? 0;
    let outputs = [completion];
    let requestId = s.requestId;
    let done = finished;
    if (s.parent) {
      const allDone = s.parent.update(s.index, completion, finished);
      requestId = s.parent.requestId;
      done = allDone;
      if (kind === 'final_only') {
        if (!allDone) return null;
        outputs = s.parent.completions.filter((c): c is CompletionOutput => c !== null);
      } else if (kind === 'cumulative') {
        outputs = s.parent.completions.filter((c): c is CompletionOutput => c !== null);
      }
    }
    return {
      requestId,
      prompt: s.promptText,
      promptTokenIds: s.promptTokenIds,
      promptLogprobs: s.promptLogprobs,
      outputs,
      finished: done,
      numCachedTokens: s.numCachedTokens,
      metrics: {
        arrivalTime: s.arrivalTime,
        firstScheduledTime: null,
        firstTokenTime: s.firstTokenTime,
        lastTokenTime: Date.now() / 1000,
        finishedTime: finished ? Date.now() / 1000 : null,
      },
    };
  }

  private toLogprobMap(pl: PositionLogprobs): Record<number, Logprob> {
    const map: Record<number, Logprob> = {};
    pl.tokenIds.forEach((id, i) => {
      if (id in map) return; // the chosen token may also be among the top-n
      map[id] = {
        logprob: pl.logprobs[i],
        rank: i === 0 ? pl.rank : i,
        decodedToken: this.tokenizer.decode([id], { skipSpecialTokens: false }),
      };
    });
    return map;
  }
}
