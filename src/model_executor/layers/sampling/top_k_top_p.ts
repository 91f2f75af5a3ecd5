// Random sampling of one row of processed logits, in vLLM V1's order: temperature,
// min-p, top-k, top-p, then a draw. Weights are exp((logit - max) / T) in f64.
import { expNonPositive } from './fast_exp.js';
import { kthLargest } from './select.js';

export interface RandomSamplingParams {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
}

/** First-level top-p bins: BIN_SCALE bins per nat below the max (temperature-scaled), 32 nats. */
const NUM_BINS = 256;
const BIN_SCALE = 8;
/** Refinement bins over the crossing bin's range. */
const NUM_SUB_BINS = 64;
/** Below this many tokens in the crossing bin, top-p just sorts them. */
const SORT_BELOW = 256;

/** Buffers reused across rows and steps (one entry per vocabulary token). */
export class SamplingScratch {
  /** Candidate token ids. */
  idx = new Int32Array(0);
  /** Candidate weights (unnormalized probabilities). */
  w = new Float64Array(0);
  /** Top-p bin of each candidate. */
  bins = new Uint8Array(0);
  /** Candidates of the crossing bin being refined. */
  pos = new Int32Array(0);
  keep = new Uint8Array(0);
  readonly binMass = new Float64Array(NUM_BINS);

  ensure(vocab: number): this {
    if (this.idx.length < vocab) {
      this.idx = new Int32Array(vocab);
      this.w = new Float64Array(vocab);
      this.bins = new Uint8Array(vocab);
      this.pos = new Int32Array(vocab);
      this.keep = new Uint8Array(vocab);
    }
    return this;
  }
}

export interface Candidates {
  /** Candidates are scratch.idx / scratch.w [0, n), in increasing token id. */
  n: number;
  /** Sum of their weights. */
  total: number;
}

/**
 * The tokens that survive min-p, top-k and top-p, with their weights. min-p and
 * top-k are logit floors: min-p keeps logit >= max + T * ln(minP) (prob >= minP *
 * maxProb); top-k keeps logit >= the k-th largest (ties kept, as vLLM).
 */
export function filterCandidates(row: Float32Array, p: RandomSamplingParams, s: SamplingScratch): Candidates {
  const vocab = row.length;
  s.ensure(vocab);
  let m = -Infinity;
  for (let i = 0; i < vocab; i++) if (row[i]! > m) m = row[i]!;
  if (m === -Infinity) return { n: 0, total: 0 };
  let floor = -Infinity;
  if (p.minP > 0) floor = m + p.temperature * Math.log(p.minP);
  if (p.topK > 0 && p.topK < vocab) floor = Math.max(floor, kthLargest(row, p.topK));
  const invT = 1 / p.temperature;
  const { idx, w, bins, binMass } = s;
  const binned = p.topP < 1;
  if (binned) binMass.fill(0);
  let n = 0;
  let total = 0;
  for (let i = 0; i < vocab; i++) {
    const l = row[i]!;
    if (l >= floor && l > -Infinity) {
      const x = (l - m) * invT;
      const wi = expNonPositive(x);
      idx[n] = i;
      w[n] = wi;
      total += wi;
      if (binned) {
        const b = Math.min(NUM_BINS - 1, Math.floor(-x * BIN_SCALE));
        bins[n] = b;
        binMass[b] += wi;
      }
      n++;
    }
  }
  if (binned && n > 1) return topP(s, n, total * p.topP);
  return { n, total };
}

/**
 * Keeps the heaviest candidates whose heavier-than-them mass is below `target`.
 *
 * NOTE: top-p without sorting the vocabulary: candidates were binned by how far
 * below the max they are (1/8 nat per bin, heaviest first); the bins before the
 * one where the running mass crosses `target` are kept whole, those after it
 * dropped, and only the crossing bin is refined (sub-binned over its own range,
 * or sorted once small), so a 128k vocabulary costs a few linear passes.
 */
function topP(s: SamplingScratch, n: number, target: number): Candidates {
  const { idx, w, bins, binMass, pos, keep } = s;
  let cross = NUM_BINS - 1;
  let massBefore = 0;
  for (let b = 0; b < NUM_BINS; b++) {
    if (massBefore + binMass[b]! >= target) {
      cross = b;
      break;
    }
    massBefore += binMass[b]!;
  }
  let len = 0;
  for (let j = 0; j < n; j++) {
    if (bins[j] === cross) {
      pos[len++] = j;
      keep[j] = 0;
    }
  }
  refineCrossing(w, pos, len, keep, massBefore, target, binMass);
  let k = 0;
  let total = 0;
  for (let j = 0; j < n; j++) {
    const b = bins[j]!;
    if (b > cross || (b === cross && keep[j] === 0)) continue;
    idx[k] = idx[j]!;
    w[k] = w[j]!;
    total += w[j]!;
    k++;
  }
  return { n: k, total };
}

/** Marks keep[j] for the heaviest of pos[0, len) while the mass before them stays below target. */
function refineCrossing(
  w: Float64Array,
  pos: Int32Array,
  len: number,
  keep: Uint8Array,
  massBefore: number,
  target: number,
  binMass: Float64Array,
): void {
  for (;;) {
    let kMax = -Infinity;
    let kMin = Infinity;
    for (let j = 0; j < len; j++) {
      const k = w[pos[j]!]!;
      if (k > kMax) kMax = k;
      if (k < kMin) kMin = k;
    }
    if (len <= SORT_BELOW || kMax === kMin) {
      // Heaviest first; equal weights in token order.
      const rest = pos.subarray(0, len).sort((a, b) => w[b]! - w[a]! || a - b);
      for (let j = 0; j < len && massBefore < target; j++) {
        keep[rest[j]!] = 1;
        massBefore += w[rest[j]!]!;
      }
      return;
    }
    const scale = NUM_SUB_BINS / (kMax - kMin);
    binMass.fill(0, 0, NUM_SUB_BINS);
    for (let j = 0; j < len; j++) binMass[Math.min(NUM_SUB_BINS - 1, Math.floor((kMax - w[pos[j]!]!) * scale))] += w[pos[j]!]!;
    let cross = NUM_SUB_BINS - 1;
    let cum = massBefore;
    for (let b = 0; b < NUM_SUB_BINS; b++) {
      if (cum + binMass[b]! >= target) {
        cross = b;
        break;
      }
      cum += binMass[b]!;
    }
    let next = 0;
    for (let j = 0; j < len; j++) {
      const b = Math.min(NUM_SUB_BINS - 1, Math.floor((kMax - w[pos[j]!]!) * scale));
      if (b < cross) keep[pos[j]!] = 1;
      else if (b === cross) pos[next++] = pos[j]!;
    }
    massBefore = cum;
    len = next;
  }
}

/** Draws a token from `row` with uniform u in [0, 1); -1 when every logit is -inf. */
export function sampleRandom(row: Float32Array, p: RandomSamplingParams, u: number, s: SamplingScratch): number {
  const { n, total } = filterCandidates(row, p, s);
  if (n === 0) return -1;
  const target = u * total;
  const { idx, w } = s;
  let acc = 0;
  for (let j = 0; j < n; j++) {
    acc += w[j]!;
    if (acc > target) return idx[j]!;
  }
  return idx[n - 1]!;
}
