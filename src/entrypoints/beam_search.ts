// Beam search as vLLM V1 runs it (vllm/beam_search.py with LLM.beam_search and
// OpenAIServing.beam_search): above the engine, each step turns every live beam into
// a new one-token request over its whole sequence (the shared prefix comes from the
// prefix cache, nothing is copied) asking for the top 2 x beamWidth logprobs; the
// candidates are ranked by cumulative_logprob / length^length_penalty and the best
// beamWidth live on. Beams that end (EOS unless ignoreEos, a stop string, the
// context length) move to the finished list; maxTokens steps end the search.
import type { FinishReason } from '../core/types.js';
import type { Logprob } from '../outputs.js';
import { SamplingParams } from '../sampling_params.js';

/** vLLM's BeamSearchParams (offline camelCase). */
export interface BeamSearchParams {
  beamWidth: number;
  maxTokens: number;
  /** Keep extending beams past EOS (default false). */
  ignoreEos?: boolean;
  /** Temperature of the one-token requests (logprobs are raw, so it does not change the ranking). Default 0. */
  temperature?: number;
  /** Exponent of the length normalization (default 1). */
  lengthPenalty?: number;
  /** Keep the EOS token / stop string in the finished beam's output (server semantics, default false). */
  includeStopStrInOutput?: boolean;
  /** Stop strings: a beam whose generated text contains one is finished. */
  stop?: string[];
}

/** vLLM's BeamSearchSequence: `tokens` include the prompt. */
export interface BeamSearchSequence {
  tokens: number[];
  /** Per generated token: the candidates it was chosen among (token id -> Logprob). */
  logprobs: Record<number, Logprob>[];
  cumLogprob: number;
  /** Filled when the sequence is returned. */
  text: string | null;
  finishReason: FinishReason | null;
  stopReason: number | string | null;
}

/** vLLM's BeamSearchOutput: the best beamWidth sequences, best first. */
export interface BeamSearchOutput {
  sequences: BeamSearchSequence[];
}

/** What a beam search needs of the tokenizer. */
export interface BeamTokenizer {
  decode(ids: readonly number[], opts?: { skipSpecialTokens?: boolean }): string;
}

/** vLLM's get_beam_search_score: the length counts the prompt and excludes a final EOS. */
export function beamSearchScore(tokens: readonly number[], cumLogprob: number, eosTokenId: number | null, lengthPenalty = 1): number {
  const len = tokens.length > 0 && tokens[tokens.length - 1] === eosTokenId ? tokens.length - 1 : tokens.length;
  return cumLogprob / len ** lengthPenalty;
}

/** Best first; JS sort is stable, so equal scores keep candidate order (deterministic). */
function sortBeams(beams: BeamSearchSequence[], eosTokenId: number | null, lengthPenalty: number): BeamSearchSequence[] {
  const key = (b: BeamSearchSequence) => beamSearchScore(b.tokens, b.cumLogprob, eosTokenId, lengthPenalty);
  return beams.map((b) => ({ b, s: key(b) })).sort((x, y) => y.s - x.s).map((x) => x.b);
}

/** The SamplingParams of each beam's one-token request. */
export function beamStepParams(p: BeamSearchParams): SamplingParams {
  return SamplingParams.create({ logprobs: 2 * p.beamWidth, maxTokens: 1, temperature: p.temperature ?? 0, detokenize: false });
}

/** Refuses parameters vLLM's BeamSearchParams would not run with. */
export function checkBeamSearchParams(p: BeamSearchParams): void {
  if (!Number.isInteger(p.beamWidth) || p.beamWidth < 1) throw new RangeError(`beam_width must be a positive integer, got ${p.beamWidth}.`);
  if (!Number.isInteger(p.maxTokens) || p.maxTokens < 1) throw new RangeError(`max_tokens must be at least 1, got ${p.maxTokens}.`);
  const lp = p.lengthPenalty ?? 1;
  if (!Number.isFinite(lp)) throw new RangeError(`length_penalty must be a finite number, got ${lp}.`);
}

/** One prompt's search state (vLLM's BeamSearchInstance). */
export class BeamSearchInstance {
  beams: BeamSearchSequence[];
  readonly completed: BeamSearchSequence[] = [];
  private steps = 0;

  constructor(
    readonly promptTokenIds: number[],
    readonly params: BeamSearchParams,
    readonly eosTokenId: number | null,
    readonly tokenizer: BeamTokenizer,
    /** Beams this long cannot ask for another token (max_model_len). */
    readonly maxModelLen = Infinity,
  ) {
    this.beams = [{ tokens: [...promptTokenIds], logprobs: [], cumLogprob: 0, text: null, finishReason: null, stopReason: null }];
  }

  /** The beams that need a step now; beams at the context length are finished first. */
  liveBeams(): BeamSearchSequence[] {
    if (this.steps >= this.params.maxTokens) return [];
    const full = this.beams.filter((b) => b.tokens.length >= this.maxModelLen);
    for (const b of full) this.completed.push({ ...b, finishReason: 'length' });
    this.beams = this.beams.filter((b) => b.tokens.length < this.maxModelLen);
    return this.beams;
  }

  /**
   * One step: `tops[i]` is the next-token logprobs of liveBeams()[i] (null when its
   * request produced none). Only the top 2 x beamWidth by rank are candidates (the
   * sampled token, when outside them, is left out: the search stays deterministic).
   */
  advance(tops: (Record<number, Logprob> | null)[]): void {
    const { beamWidth, ignoreEos = false, lengthPenalty = 1 } = this.params;
    const next: BeamSearchSequence[] = [];
    this.beams.forEach((beam, i) => {
      const top = tops[i];
      if (!top) return;
      for (const [key, lp] of Object.entries(top)) {
        if (lp.rank > 2 * beamWidth) continue;
        const token = Number(key);
        const cand: BeamSearchSequence = {
          tokens: [...beam.tokens, token],
          logprobs: [...beam.logprobs, top],
          cumLogprob: beam.cumLogprob + lp.logprob,
          text: null,
          finishReason: null,
          stopReason: null,
        };
        if (token === this.eosTokenId && !ignoreEos) this.completed.push({ ...cand, finishReason: 'stop', stopReason: null });
        else if (!this.stopped(cand)) next.push(cand);
      }
    });
    this.beams = sortBeams(next, this.eosTokenId, lengthPenalty).slice(0, beamWidth);
    this.steps++;
  }

  /** Moves a candidate whose generated text holds a stop string to the finished list. */
  private stopped(cand: BeamSearchSequence): boolean {
    const stop = this.params.stop ?? [];
    if (stop.length === 0) return false;
    const text = this.tokenizer.decode(cand.tokens.slice(this.promptTokenIds.length), { skipSpecialTokens: true });
    for (const s of stop) {
      const at = text.indexOf(s);
      if (at < 0) continue;
      const keep = this.params.includeStopStrInOutput ? at + s.length : at;
      this.completed.push({ ...cand, text: text.slice(0, keep), finishReason: 'stop', stopReason: s });
      return true;
    }
    return false;
  }

  /** The best beamWidth of the finished and live beams, best first (live ones end by length). */
  best(): BeamSearchSequence[] {
    const all = [...this.completed, ...this.beams.map((b) => ({ ...b, finishReason: b.finishReason ?? ('length' as const) }))];
    return sortBeams(all, this.eosTokenId, this.params.lengthPenalty ?? 1).slice(0, this.params.beamWidth);
  }
}

/** Next-token logprobs of each sequence (one one-token request each), in order. */
export type BeamStep = (sequences: number[][]) => Promise<(Record<number, Logprob> | null)[]>;

/** Runs the instances in lock step, one batch of beam requests per step, until none is live. */
export async function runBeamSearch(instances: BeamSearchInstance[], step: BeamStep): Promise<void> {
  for (;;) {
    const live = instances.map((inst) => inst.liveBeams());
    const flat = live.flat();
    if (flat.length === 0) return;
    const tops = await step(flat.map((b) => b.tokens));
    let k = 0;
    instances.forEach((inst, j) => {
      inst.advance(tops.slice(k, k + live[j].length));
      k += live[j].length;
    });
  }
}
