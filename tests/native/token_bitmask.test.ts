// vt_apply_token_bitmask on the CPU against a TypeScript reference: masked tokens
// become -inf, allowed ones keep their logits, rows not named are untouched.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { DType, Tensor, cpu, f32, i32, randn, rng } from './helpers.js';

const ops = cpu(2);

function randomMask(next: () => number, n: number, width: number): Int32Array {
  const m = new Int32Array(n * width);
  for (let i = 0; i < m.length; i++) m[i] = (next() * 2 ** 32) | 0;
  m[0] = -1; // a full word (all allowed)
  if (m.length > 1) m[1] = 0; // an empty one
  return m;
}

test('apply_token_bitmask masks exactly the clear bits of the named rows', () => {
  const r = rng(3);
  for (const [R, vocab, rows] of [[3, 100, [2, 0]], [1, 64, [0]], [5, 4099, [4, 1, 3]], [2, 31, [1]]] as [number, number, number[]][]) {
    const width = Math.ceil(vocab / 32) + (vocab % 7 === 0 ? 1 : 0);
    const logits = randn(r, R * vocab);
    const mask = randomMask(r, rows.length, width);
    const t = f32(ops, logits, [R, vocab]);
    const m = Tensor.fromI32(ops, mask, [rows.length, width]);
    const idx = i32(ops, rows);
    assert.equal(ops.applyTokenBitmask(t.addr, m.addr, idx.addr, rows.length, vocab, width, DType.F32), 0, ops.lastError());
    const got = t.toF32();
    const want = logits.slice();
    rows.forEach((row, i) => {
      for (let tok = 0; tok < vocab; tok++) if (((mask[i * width + (tok >> 5)] >>> (tok & 31)) & 1) === 0) want[row * vocab + tok] = -Infinity;
    });
    assert.deepEqual(Array.from(got), Array.from(want), `R=${R} vocab=${vocab}`);
    for (const x of [t, m, idx]) x.dispose();
  }
});

test('apply_token_bitmask refuses a bitmask narrower than the vocabulary and negative rows', () => {
  const t = f32(ops, new Float32Array(2 * 64), [2, 64]);
  const m = Tensor.fromI32(ops, new Int32Array(2), [1, 2]);
  const bad = i32(ops, [-1]);
  assert.notEqual(ops.applyTokenBitmask(t.addr, m.addr, bad.addr, 1, 64, 1, DType.F32), 0);
  assert.match(ops.lastError(), /width 1 words cannot cover vocab 64/);
  assert.notEqual(ops.applyTokenBitmask(t.addr, m.addr, bad.addr, 1, 64, 2, DType.F32), 0);
  assert.match(ops.lastError(), /negative/);
  for (const x of [t, m, bad]) x.dispose();
});
