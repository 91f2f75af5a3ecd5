// Plain, slow reference implementations for the sampler tests (full sorts, f64).

/** A small deterministic PRNG for test data (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Normal(0, sd) values from `rand` (Box-Muller), rounded to f32. */
export function normals(rand: () => number, n: number, sd = 1): number[] {
  const out: number[] = [];
  while (out.length < n) {
    const u = 1 - rand();
    const v = rand();
    out.push(Math.fround(sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)));
  }
  return out;
}

export function logSoftmax(logits: ArrayLike<number>): number[] {
  const xs = Array.from(logits);
  const m = Math.max(...xs);
  const lse = m + Math.log(xs.reduce((s, x) => s + Math.exp(x - m), 0));
  return xs.map((x) => x - lse);
}

export interface RefParams {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
}

/**
 * The distribution vLLM V1 samples from: softmax(logits / T), then min-p (probs
 * below minP * max prob masked), top-k (logits below the k-th largest masked), top-p
 * as vLLM writes it (ascending sort, cumulative sum <= 1 - p masked, the largest
 * always kept), renormalized.
 */
export function refDistribution(logits: ArrayLike<number>, p: RefParams): number[] {
  const V = logits.length;
  let scaled = Array.from(logits, (x) => x / p.temperature);
  const softmax = (xs: number[]) => {
    const m = Math.max(...xs);
    const e = xs.map((x) => (x === -Infinity ? 0 : Math.exp(x - m)));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((x) => x / s);
  };
  if (p.minP > 0) {
    const probs = softmax(scaled);
    const maxP = Math.max(...probs);
    scaled = scaled.map((x, i) => (probs[i]! < p.minP * maxP ? -Infinity : x));
  }
  if (p.topK > 0 && p.topK < V) {
    const sorted = [...scaled].sort((a, b) => b - a);
    const kth = sorted[p.topK - 1]!;
    scaled = scaled.map((x) => (x < kth ? -Infinity : x));
  }
  if (p.topP < 1) {
    const order = scaled.map((_, i) => i).sort((a, b) => scaled[a]! - scaled[b]! || b - a); // ascending
    const probs = softmax(scaled);
    let cum = 0;
    const masked = new Set<number>();
    order.forEach((i, j) => {
      cum += probs[i]!;
      if (cum <= 1 - p.topP && j !== order.length - 1) masked.add(i);
    });
    scaled = scaled.map((x, i) => (masked.has(i) ? -Infinity : x));
  }
  return softmax(scaled);
}

/**
 * Pearson chi-square of observed counts against probabilities (bins expecting
 * fewer than 5 pooled). Returns the statistic and the critical value at p = 1e-6
 * (Wilson-Hilferty), and how many draws fell where the probability is 0.
 */
export function chiSquare(counts: number[], probs: number[]): { chi2: number; critical: number; df: number; impossible: number } {
  const N = counts.reduce((a, b) => a + b, 0);
  let impossible = 0;
  const bins: [number, number][] = [];
  let poolO = 0;
  let poolE = 0;
  probs.forEach((q, i) => {
    if (q === 0) {
      impossible += counts[i]!;
      return;
    }
    const e = q * N;
    if (e < 5) {
      poolO += counts[i]!;
      poolE += e;
    } else bins.push([counts[i]!, e]);
  });
  if (poolE > 0) bins.push([poolO, poolE]);
  const chi2 = bins.reduce((s, [o, e]) => s + (o - e) ** 2 / e, 0);
  const df = Math.max(1, bins.length - 1);
  const z = 4.753; // one-sided 1e-6
  const critical = df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3;
  return { chi2, critical, df, impossible };
}
