// A seeded, counter-based random generator for sampling (SplitMix64 in 32-bit halves).
//
// NOTE: SplitMix64's k-th output is a pure function of (seed, k): its state is
// seed + k * 0x9E3779B97F4A7C15 and each output is a 64-bit finalizer of that state.
// So a generator rebuilt after a preemption continues exactly where the old one
// stopped (`new SamplingGenerator(seed, drawsSoFar)`), and a request's draws never
// depend on anything but its own seed and how many draws it made.

const GAMMA_HI = 0x9e3779b9;
const GAMMA_LO = 0x7f4a7c15;
const MASK64 = (1n << 64n) - 1n;
const TWO_POW_53 = 2 ** 53;

/** High 32 bits of the 64-bit product of two unsigned 32-bit numbers. */
function mulHi32(a: number, b: number): number {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return (a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) >>> 0;
}

export class SamplingGenerator {
  readonly seed: bigint;
  private hi = 0;
  private lo = 0;
  private count = 0;

  /** @param seed any integer (taken modulo 2^64) @param offset draws already made */
  constructor(seed: number | bigint, offset = 0) {
    this.seed = BigInt.asUintN(64, BigInt(seed));
    this.offset = offset;
  }

  /** Number of 64-bit draws made so far; setting it jumps there. */
  get offset(): number {
    return this.count;
  }

  set offset(k: number) {
    if (!Number.isInteger(k) || k < 0) throw new RangeError(`generator offset must be a non-negative integer, got ${k}`);
    const state = (this.seed + BigInt(k) * 0x9e3779b97f4a7c15n) & MASK64;
    this.hi = Number(state >> 32n);
    this.lo = Number(state & 0xffffffffn);
    this.count = k;
  }

  /** Next 64-bit output as [hi, lo] unsigned 32-bit halves. */
  nextUint64(): [number, number] {
    // state += gamma
    const lo = (this.lo + GAMMA_LO) >>> 0;
    const carry = lo < this.lo ? 1 : 0;
    this.hi = (this.hi + GAMMA_HI + carry) >>> 0;
    this.lo = lo;
    this.count++;
    let h = this.hi;
    let l = this.lo;
    // z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9
    l = (l ^ ((l >>> 30) | (h << 2))) >>> 0;
    h = (h ^ (h >>> 30)) >>> 0;
    [h, l] = mul64(h, l, 0xbf58476d, 0x1ce4e5b9);
    // z = (z ^ (z >>> 27)) * 0x94D049BB133111EB
    l = (l ^ ((l >>> 27) | (h << 5))) >>> 0;
    h = (h ^ (h >>> 27)) >>> 0;
    [h, l] = mul64(h, l, 0x94d049bb, 0x133111eb);
    // z ^ (z >>> 31)
    l = (l ^ ((l >>> 31) | (h << 1))) >>> 0;
    h = (h ^ (h >>> 31)) >>> 0;
    return [h, l];
  }

  /** A uniform double in [0, 1) from the top 53 bits of the next output. */
  random(): number {
    const [h, l] = this.nextUint64();
    return (h * 2 ** 21 + (l >>> 11)) / TWO_POW_53;
  }
}

/** Low 64 bits of a 64 x 64-bit product, in 32-bit halves. */
function mul64(aHi: number, aLo: number, bHi: number, bLo: number): [number, number] {
  const lo = Math.imul(aLo, bLo) >>> 0;
  const hi = (mulHi32(aLo, bLo) + Math.imul(aHi, bLo) + Math.imul(aLo, bHi)) >>> 0;
  return [hi, lo];
}
