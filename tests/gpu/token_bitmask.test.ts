// The CUDA vt_apply_token_bitmask against its CPU twin, every activation dtype:
// the masked positions must be -inf and every other value unchanged (bit for bit
// after the dtype's rounding).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DTYPES, DType, Tensor, bitsOf, check, gpuSkipReason, openLibs, record, rng, roundTo } from './helpers.js';

const skip = gpuSkipReason();

test('apply_token_bitmask: CUDA equals the CPU twin', { skip }, () => {
  const l = openLibs();
  const next = rng(17);
  const mine: string[] = [];
  for (const [R, vocab, rows] of [[4, 128256, [3, 0, 2]], [2, 151936, [1]], [3, 4099, [2, 1]], [1, 33, [0]]] as [number, number, number[]][]) {
    const width = Math.ceil(vocab / 32);
    const logits = new Float32Array(R * vocab).map(() => next() * 8 - 4);
    const mask = new Int32Array(rows.length * width).map(() => (next() * 2 ** 32) | 0);
    mask[0] = -1;
    for (const dt of DTYPES) {
      const ref = roundTo(logits, dt);
      const c = Tensor.fromF32(l.cpu, ref, [R, vocab]);
      const g = Tensor.fromHost(l.cuda, bitsOf(logits, dt), [R, vocab], dt);
      const mc = Tensor.fromI32(l.cpu, mask, [rows.length, width]);
      const mg = Tensor.fromI32(l.cuda, mask, [rows.length, width]);
      const rc = Tensor.fromI32(l.cpu, Int32Array.from(rows), [rows.length]);
      const rg = Tensor.fromI32(l.cuda, Int32Array.from(rows), [rows.length]);
      check(l.cpu, l.cpu.applyTokenBitmask(c.addr, mc.addr, rc.addr, rows.length, vocab, width, DType.F32), 'cpu');
      check(l.cuda, l.cuda.applyTokenBitmask(g.addr, mg.addr, rg.addr, rows.length, vocab, width, dt), 'cuda');
      const want = c.toF32();
      const got = g.toF32();
      let diff = 0;
      for (let i = 0; i < want.length; i++) if (!Object.is(got[i], want[i])) diff++;
      if (!record('apply_token_bitmask', `R=${R} vocab=${vocab} (values differing)`, dt, diff, 0)) mine.push(`${DType[dt]} vocab=${vocab}: ${diff} values differ`);
      for (const t of [c, g, mc, mg, rc, rg]) t.dispose();
    }
  }
  assert.deepEqual(mine, []);
});
