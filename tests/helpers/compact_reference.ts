// Reads the compact HuggingFace references of tests/fixtures/tools/make_new_family_fixtures.py:
// per position the top-k logits with their ids and the row's logsumexp (so that
// logprob = logit - logsumexp), and the final normed hidden state in full.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WeightSource } from '../../src/model_executor/model_loader/index.js';

export interface CompactCase {
  prompt: string;
  promptIds: number[];
  generatedIds: number[];
  topLogits: Float32Array; // [T, k]
  topIds: Int32Array; // [T, k]
  logsumexp: Float32Array; // [T]
  hidden: Float32Array; // [T, hidden]
  /** Max |Δlogit| in HF when a feature is switched off (max_abs_diff_without_*). */
  sensitivity: Record<string, number>;
}

export function loadCompactReference(dir: string): { topK: number; cases: CompactCase[] } {
  const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8'));
  const st = WeightSource.openFile(join(dir, 'reference.safetensors'));
  try {
    const cases = ref.cases.map((c: Record<string, unknown>) => ({
      prompt: c.prompt as string,
      promptIds: c.prompt_ids as number[],
      generatedIds: c.generated_ids as number[],
      topLogits: st.readF32(c.top_logits as string),
      topIds: new Int32Array(st.read(c.top_ids as string).slice().buffer),
      logsumexp: st.readF32(c.logsumexp as string),
      hidden: st.readF32(c.hidden as string),
      sensitivity: Object.fromEntries(Object.entries(c).filter(([k]) => k.startsWith('max_abs_diff_without_'))) as Record<string, number>,
    }));
    return { topK: ref.top_k as number, cases };
  } finally {
    st.close();
  }
}

function logsumexp(row: Float32Array): number {
  let m = -Infinity;
  for (const x of row) m = Math.max(m, x);
  let s = 0;
  for (const x of row) s += Math.exp(x - m);
  return m + Math.log(s);
}

export interface LogprobComparison {
  /** Max |Δlogprob| over every position's HF top-k tokens. */
  maxLogprobDiff: number;
  /** Positions whose argmax differs from HF's where HF's top-1 margin is at least `margin`. */
  argmaxMismatches: number[];
  /** Positions compared for argmax (margin at least `margin`). */
  decisive: number;
}

/** logits [T, vocab] of ours against a compact case. */
export function compareLogprobs(logits: Float32Array, vocab: number, c: CompactCase, topK: number, margin: number): LogprobComparison {
  const T = c.logsumexp.length;
  let maxLogprobDiff = 0;
  const argmaxMismatches: number[] = [];
  let decisive = 0;
  for (let t = 0; t < T; t++) {
    const row = logits.subarray(t * vocab, (t + 1) * vocab);
    const lse = logsumexp(row);
    for (let j = 0; j < topK; j++) {
      const id = c.topIds[t * topK + j];
      const d = Math.abs(row[id] - lse - (c.topLogits[t * topK + j] - c.logsumexp[t]));
      maxLogprobDiff = Math.max(maxLogprobDiff, d);
    }
    if (c.topLogits[t * topK] - c.topLogits[t * topK + 1] >= margin) {
      decisive++;
      let best = 0;
      for (let i = 1; i < vocab; i++) if (row[i] > row[best]) best = i;
      if (best !== c.topIds[t * topK]) argmaxMismatches.push(t);
    }
  }
  return { maxLogprobDiff, argmaxMismatches, decisive };
}

/** Generated tokens up to the first position where HF's top two logits are within `margin`. */
export function decisivePrefix(c: CompactCase, topK: number, margin: number): number {
  for (let j = 0; j < c.generatedIds.length; j++) {
    const t = c.promptIds.length - 1 + j;
    if (c.topLogits[t * topK] - c.topLogits[t * topK + 1] < margin) return j;
  }
  return c.generatedIds.length;
}
