// Reads every fixture's HuggingFace reference (reference.json + reference.safetensors),
// in the compact format of tests/fixtures/tools/make_new_family_fixtures.py (the older
// full-vocabulary references were converted by tests/fixtures/tools/compact_references.py):
// per position the top-k logits with their ids and the row's logsumexp (so that
// logprob = logit - logsumexp), and the final normed hidden state in full.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WeightSource } from '../../src/model_executor/model_loader/index.js';

export interface CompactCase {
  prompt: string;
  promptIds: number[];
  generatedIds: number[];
  generatedText: string;
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
      generatedText: c.generated_text as string,
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

/** The tensor that maps a model's final hidden state to logits (lm_head, or the tied embedding). */
const LM_HEAD_NAMES = ['lm_head.weight', 'model.embed_tokens.weight', 'transformer.wte.weight'];

/** How far a rebuilt row may be from HF's stored top-k logits and logsumexp. */
export const REBUILD_TOLERANCE = 1e-4;

/**
 * HF's full logit rows [T, vocab], one per case, rebuilt as its hidden state [T, hidden] times the
 * model's lm_head^T [hidden, vocab] (float64 sums), for the fixtures whose logits are a
 * plain linear head (no soft cap or scaling). Checked here against what HF stored:
 * every row's top-k logits and its logsumexp (a function of the whole row) within
 * REBUILD_TOLERANCE, so a wrong rebuild fails instead of passing silently.
 * (tests/fixtures/tools/compact_references.py measured the rebuild against the old
 * full rows: at most 1.7e-5.)
 */
export function rebuildLogits(modelDir: string, cases: CompactCase[], topK: number): Float32Array[] {
  const st = WeightSource.open(modelDir);
  let w: Float32Array; // [vocab, hidden]
  try {
    w = st.readF32(LM_HEAD_NAMES.find((n) => st.has(n))!);
  } finally {
    st.close();
  }
  return cases.map((c, i) => {
    const T = c.logsumexp.length;
    const H = c.hidden.length / T;
    const V = w.length / H;
    const out = new Float32Array(T * V); // [T, vocab]
    for (let t = 0; t < T; t++) {
      const h = c.hidden.subarray(t * H, (t + 1) * H);
      for (let v = 0; v < V; v++) {
        let s = 0;
        for (let d = 0; d < H; d++) s += h[d] * w[v * H + d];
        out[t * V + v] = s;
      }
      const row = out.subarray(t * V, (t + 1) * V);
      const dl = Math.abs(logsumexp(row) - c.logsumexp[t]);
      if (!(dl <= REBUILD_TOLERANCE)) throw new Error(`${modelDir} case ${i}: rebuilt row ${t} has its logsumexp off by ${dl}`);
      for (let j = 0; j < topK; j++) {
        const d = Math.abs(row[c.topIds[t * topK + j]] - c.topLogits[t * topK + j]);
        if (!(d <= REBUILD_TOLERANCE)) throw new Error(`${modelDir} case ${i}: rebuilt row ${t}, top-${j} logit off by ${d}`);
      }
    }
    return out;
  });
}

/** Max |Δlogit| over every position's HF top-k tokens (raw logits, not logprobs). */
export function maxTopLogitDiff(logits: Float32Array, vocab: number, c: CompactCase, topK: number): number {
  let m = 0;
  for (let t = 0; t < c.logsumexp.length; t++) {
    for (let j = 0; j < topK; j++) m = Math.max(m, Math.abs(logits[t * vocab + c.topIds[t * topK + j]] - c.topLogits[t * topK + j]));
  }
  return m;
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

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function argmaxRows(x: Float32Array, width: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < x.length / width; r++) {
    let best = 0;
    for (let i = 1; i < width; i++) if (x[r * width + i] > x[r * width + best]) best = i;
    out.push(best);
  }
  return out;
}
