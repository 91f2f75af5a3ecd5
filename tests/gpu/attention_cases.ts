// Attention cases for the GPU parity test: batches that mix decode rows, fresh
// prefills and chunked prefills (queries after cached tokens) over a paged cache
// whose blocks are scattered at random, in every activation dtype.
import { DTYPES, DType, Pair, type Libs, check, randomValues, record, relErr, rng } from './helpers.js';

interface Case {
  name: string;
  H: number;
  KVH: number;
  D: number;
  /** [tokens already in the cache, query tokens this step] per sequence */
  seqs: [number, number][];
  window?: number;
  cap?: number;
}

const MIXED: [number, number][] = [
  [37, 1], // decode
  [0, 23], // fresh prefill
  [50, 17], // later chunk of a prompt
  [100, 1],
  [16, 16], // chunk starting on a block boundary
];

const CASES: Case[] = [
  { name: 'mixed GQA 4:1 d64', H: 8, KVH: 2, D: 64, seqs: MIXED },
  { name: 'mixed GQA 4:1 d128', H: 8, KVH: 2, D: 128, seqs: MIXED },
  { name: 'mixed MQA d128', H: 4, KVH: 1, D: 128, seqs: [[0, 40], [70, 1], [9, 5]] },
  { name: 'decode batch GQA d64', H: 8, KVH: 2, D: 64, seqs: [[4, 1], [32, 1], [199, 1], [0, 1], [700, 1]] },
  { name: 'decode MQA 8:1 d128', H: 8, KVH: 1, D: 128, seqs: [[300, 1], [63, 1]] },
  { name: 'long decode 4000 (split-K) d128', H: 8, KVH: 2, D: 128, seqs: [[3999, 1]] },
  { name: 'long decode batch d128', H: 32, KVH: 8, D: 128, seqs: [[3999, 1], [1499, 1], [16, 1]] },
  { name: 'sliding window 24 + soft cap 30', H: 4, KVH: 2, D: 64, window: 24, cap: 30, seqs: [[40, 1], [0, 50], [60, 20]] },
  { name: 'sliding window 100 decode', H: 4, KVH: 2, D: 64, window: 100, seqs: [[3000, 1], [50, 1]] },
  { name: 'd32 GQA 3:1', H: 6, KVH: 2, D: 32, seqs: [[0, 19], [5, 1], [33, 7]] },
  { name: 'd256 MQA', H: 2, KVH: 1, D: 256, seqs: [[0, 70], [30, 1]] },
  { name: 'MHA d80', H: 3, KVH: 3, D: 80, seqs: [[0, 33], [12, 1]] },
  { name: 'long prefill chunks d128', H: 8, KVH: 2, D: 128, seqs: [[0, 300], [200, 130]] },
  // Issue 16's shapes: caps small enough to bite on every score, on the tensor-core (d128) and SIMT (d256) kernels.
  { name: 'soft cap 2 + window 24, tensor cores d128', H: 8, KVH: 2, D: 128, window: 24, cap: 2, seqs: MIXED },
  { name: 'Gemma 2 d256 GQA 2:1, soft cap 1.5, window 40', H: 8, KVH: 4, D: 256, window: 40, cap: 1.5, seqs: [[0, 90], [70, 1], [33, 20]] },
  { name: 'Gemma 3 d256 MQA window 512, prompt past the window', H: 4, KVH: 1, D: 256, window: 512, seqs: [[0, 700], [900, 1]] },
];

const BLOCK = 16;

/** Runs every case in every dtype; returns the failures. */
export function runAttentionCases(l: Libs): string[] {
  const failures: string[] = [];
  const next = rng(7);
  for (const c of CASES) {
    for (const act of DTYPES) {
      const err = runCase(l, c, act, next);
      if (!record('attention', c.name, act, err)) failures.push(`attention ${DType[act]} ${c.name}: ${err}`);
    }
  }
  return failures;
}

function runCase(l: Libs, c: Case, act: DType, next: () => number): number {
  const { H, KVH, D } = c;
  const numSeqs = c.seqs.length;
  const seqLens = c.seqs.map(([ctx, q]) => ctx + q);
  const qLens = c.seqs.map(([, q]) => q);
  const numTokens = qLens.reduce((a, b) => a + b, 0);
  const maxQueryLen = Math.max(...qLens);
  const maxSeqLen = Math.max(...seqLens);
  const need = seqLens.map((s) => Math.ceil(s / BLOCK));
  const maxBlocks = Math.max(...need) + 1;
  const numBlocks = need.reduce((a, b) => a + b, 0) + 3;
  // Blocks handed out in a random order, so that no sequence's blocks are contiguous.
  const perm = [...Array(numBlocks).keys()].sort(() => next() - 0.5);
  const table = new Int32Array(numSeqs * maxBlocks);
  let k = 0;
  for (let s = 0; s < numSeqs; s++) for (let b = 0; b < need[s]; b++) table[s * maxBlocks + b] = perm[k++];
  const qsl = new Int32Array(numSeqs + 1);
  for (let s = 0; s < numSeqs; s++) qsl[s + 1] = qsl[s] + qLens[s];

  // q read in place from a fused [q | k | v] projection: rows (H + 2 KVH) * D apart.
  const qStride = (H + 2 * KVH) * D;
  const cacheN = numBlocks * BLOCK * KVH * D;
  const q = Pair.of(l, randomValues(next, numTokens * qStride, act, 4), act);
  const kc = Pair.of(l, randomValues(next, cacheN, act), act);
  const vc = Pair.of(l, randomValues(next, cacheN, act), act);
  const loc = Pair.i32(l, qsl);
  const lens = Pair.i32(l, Int32Array.from(seqLens));
  const bt = Pair.i32(l, table);
  const out = Pair.out(l, numTokens * H * D, act);
  const scale = 1 / Math.sqrt(D);
  const args = [numSeqs, numTokens, maxQueryLen, maxSeqLen, H, KVH, D, BLOCK, maxBlocks, qStride, scale, c.window ?? 0, c.cap ?? 0] as const;
  check(
    l.cpu,
    l.cpu.attention(out.cpu.addr, q.cpu.addr, kc.cpu.addr, vc.cpu.addr, loc.cpu.addr, lens.cpu.addr, bt.cpu.addr, ...args, DType.F32),
    `attention cpu (${c.name})`,
  );
  check(
    l.cuda,
    l.cuda.attention(out.gpu.addr, q.gpu.addr, kc.gpu.addr, vc.gpu.addr, loc.gpu.addr, lens.gpu.addr, bt.gpu.addr, ...args, act),
    `attention cuda (${c.name})`,
  );
  const err = relErr(out.gpu.toF32(), out.cpu.toF32());
  for (const t of [q, kc, vc, loc, lens, bt, out]) t.dispose();
  return err;
}
