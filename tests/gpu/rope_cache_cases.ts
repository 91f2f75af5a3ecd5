// Cases for the GPU parity test of vt_rope_and_cache and vt_qk_norm_rope_and_cache:
// the CUDA fused op against (1) the CUDA launches it replaces (vt_rope or
// vt_qk_norm_rope, then vt_reshape_and_cache), bit for bit, and (2) its CPU twin
// (f32 on the same values) within the dtype's tolerance; q, k, v as views into
// fused qkv rows or three tensors, GQA/MQA, partial rotary, padding slots (-1),
// caches holding old values, every activation dtype.
import { DTYPES, DType, Pair, type Libs, type Tensor, check, randomValues, record, relErr, rng, ropeCosSin } from './helpers.js';

interface Case {
  H: number;
  KV: number;
  D: number;
  rot: number;
  /** q, k, v inside one [T, (H + 2 KV) * D] row; else three contiguous tensors. */
  qkvRows: boolean;
}

const SHAPES: Case[] = [
  { H: 32, KV: 8, D: 128, rot: 128, qkvRows: true }, // Llama-3-8B's heads
  { H: 8, KV: 2, D: 128, rot: 64, qkvRows: true }, // partial rotary
  { H: 6, KV: 1, D: 64, rot: 64, qkvRows: false }, // MQA, q/k/v apart (whole-projection norms)
  { H: 4, KV: 3, D: 12, rot: 8, qkvRows: true }, // widths that take the scalar cache copies
];
const [T, BLOCKS, BLOCK, MAXPOS, EPS] = [11, 9, 4, 64, 1e-6];

/** Bits of a tensor's values (f32 widening is exact for bf16 / f16). */
const bits = (t: Tensor) => new Uint32Array(t.toF32().buffer);
const sameBits = (a: Uint32Array, b: Uint32Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/** One case's device state: rows (one buffer or q, k, v), caches, slots, positions, tables, norm weights. */
function setup(l: Libs, c: Case, act: DType, next: () => number) {
  const { H, KV, D } = c;
  const w = (H + 2 * KV) * D;
  const hostRows = c.qkvRows ? [randomValues(next, T * w, act, 2)] : [H, KV, KV].map((n) => randomValues(next, T * n * D, act, 2));
  const cacheN = BLOCKS * BLOCK * KV * D;
  const kcHost = randomValues(next, cacheN, act), vcHost = randomValues(next, cacheN, act);
  const perm = [...Array(BLOCKS * BLOCK).keys()].sort(() => next() - 0.5);
  const slots = Int32Array.from({ length: T }, (_, t) => (t % 4 === 2 ? -1 : perm[t]));
  const pos = Int32Array.from({ length: T }, () => Math.floor(next() * MAXPOS));
  const cs = ropeCosSin(MAXPOS, c.rot);
  const qw = randomValues(next, D, act), kw = randomValues(next, D, act);
  /** Fresh copies of the inputs (the ops work in place). */
  return () => {
    const rows = hostRows.map((x) => Pair.of(l, x, act));
    const views = (dev: 'cpu' | 'gpu') => {
      const b = rows.map((p) => p[dev]);
      const el = b[0].nbytes / b[0].numel;
      return c.qkvRows
        ? { q: b[0].addr, k: b[0].addr + H * D * el, v: b[0].addr + (H + KV) * D * el, qs: w, ks: w, vs: w }
        : { q: b[0].addr, k: b[1].addr, v: b[2].addr, qs: H * D, ks: KV * D, vs: KV * D };
    };
    return {
      rows, views, kc: Pair.of(l, kcHost, act), vc: Pair.of(l, vcHost, act), slots: Pair.i32(l, slots), pos: Pair.i32(l, pos),
      cs: Pair.of(l, cs, DType.F32), // [MAXPOS, rot] f32 on both
      qw: Pair.of(l, qw, act), kw: Pair.of(l, kw, act),
      dispose() { for (const p of [...rows, this.kc, this.vc, this.slots, this.pos, this.cs, this.qw, this.kw]) p.dispose(); },
    };
  };
}

type State = ReturnType<ReturnType<typeof setup>>;

/** The fused op on one library. norm: the per-head q/k norm's weight offset, or null for plain rope. */
function fused(l: Libs, dev: 'cpu' | 'gpu', s: State, c: Case, neox: number, norm: number | null, act: DType): void {
  const ops = dev === 'cpu' ? l.cpu : l.cuda, a = dev === 'cpu' ? DType.F32 : act;
  const v = s.views(dev), x = (p: Pair) => p[dev].addr;
  const rc = norm === null
    ? ops.ropeAndCache(v.q, v.k, v.v, x(s.pos), x(s.cs), x(s.kc), x(s.vc), x(s.slots), T, c.H, c.KV, c.D, c.rot, v.qs, v.ks, v.vs, neox, a)
    : ops.qkNormRopeAndCache(v.q, v.k, v.v, x(s.qw), x(s.kw), x(s.pos), x(s.cs), x(s.kc), x(s.vc), x(s.slots), T, c.H, c.KV, c.D, c.rot, v.qs,
      v.ks, v.vs, EPS, norm, neox, a, a);
  check(ops, rc, `${norm === null ? 'rope' : 'qk_norm_rope'}_and_cache ${dev}`);
}

/** The two CUDA launches the fused op replaces. */
function twoLaunches(l: Libs, s: State, c: Case, neox: number, norm: number | null, act: DType): void {
  const v = s.views('gpu'), g = l.cuda;
  if (norm === null) {
    check(g, g.rope(v.q, v.k, s.pos.gpu.addr, s.cs.gpu.addr, T, c.H, c.KV, c.D, c.rot, v.qs, v.ks, neox, act), 'rope');
  } else {
    check(g, g.qkNormRope(v.q, v.k, s.qw.gpu.addr, s.kw.gpu.addr, s.pos.gpu.addr, s.cs.gpu.addr, T, c.H, c.KV, c.D, c.rot, v.qs, v.ks, EPS, norm,
      neox, act, act), 'qk_norm_rope');
  }
  check(g, g.reshapeAndCache(v.k, v.v, s.kc.gpu.addr, s.vc.gpu.addr, s.slots.gpu.addr, T, c.KV, c.D, v.ks, v.vs, act), 'reshape_and_cache');
}

/** Runs every case; returns the failures (empty when all pass) and records each comparison. */
export function runRopeCacheCases(l: Libs): string[] {
  const next = rng(77);
  const mine: string[] = [];
  for (const act of DTYPES)
    for (const c of SHAPES)
      for (const neox of [1, 0])
        for (const norm of [null, 0, 1]) {
          const name = `${norm === null ? 'rope' : `qk_norm+${norm}`} ${neox ? 'neox' : 'gptj'} H=${c.H} KV=${c.KV} D=${c.D} rot=${c.rot} ${c.qkvRows ? 'qkv rows' : 'apart'}`;
          const op = norm === null ? 'rope_and_cache' : 'qk_norm_rope_and_cache';
          const make = setup(l, c, act, next);
          const a = make(), b = make();
          fused(l, 'gpu', a, c, neox, norm, act);
          fused(l, 'cpu', a, c, neox, norm, act);
          twoLaunches(l, b, c, neox, norm, act);
          // (1) the launches it replaces: q, k, v rows and both caches, bit for bit.
          const same = a.rows.every((r, i) => sameBits(bits(r.gpu), bits(b.rows[i].gpu))) && sameBits(bits(a.kc.gpu), bits(b.kc.gpu)) &&
            sameBits(bits(a.vc.gpu), bits(b.vc.gpu));
          if (!record(`${op} vs two launches`, name, act, same ? 0 : 1, 0)) mine.push(`${op} ${DType[act]} ${name}: differs from the two launches`);
          // (2) the CPU twin: rows and k cache within tolerance, the v cache (a copy) exact.
          const rowErr = Math.max(...a.rows.map((r) => relErr(r.gpu.toF32(), r.cpu.toF32())));
          const kErr = relErr(a.kc.gpu.toF32(), a.kc.cpu.toF32()), vErr = relErr(a.vc.gpu.toF32(), a.vc.cpu.toF32());
          if (!record(op, `${name} rows`, act, rowErr)) mine.push(`${op} ${DType[act]} ${name}: rows vs cpu ${rowErr}`);
          if (!record(op, `${name} k_cache`, act, kErr)) mine.push(`${op} ${DType[act]} ${name}: k_cache vs cpu ${kErr}`);
          if (!record(`${op} v_cache`, name, act, vErr, 0)) mine.push(`${op} ${DType[act]} ${name}: v_cache vs cpu ${vErr}`);
          a.dispose();
          b.dispose();
        }
  return mine;
}
