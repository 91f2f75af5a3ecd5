import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SamplingGenerator } from '../../src/model_executor/layers/sampling/generator.js';

/** Plain BigInt SplitMix64 (Steele, Lea & Flood 2014). */
function* splitmix64(seed: bigint): Generator<bigint> {
  const M = (1n << 64n) - 1n;
  let s = seed & M;
  for (;;) {
    s = (s + 0x9e3779b97f4a7c15n) & M;
    let z = s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
    yield z ^ (z >> 31n);
  }
}

const toBig = ([h, l]: [number, number]) => (BigInt(h) << 32n) | BigInt(l);

test('SplitMix64 of seed 0 gives the published first outputs', () => {
  const g = new SamplingGenerator(0);
  assert.equal(toBig(g.nextUint64()), 0xe220a8397b1dcdafn);
  assert.equal(toBig(g.nextUint64()), 0x6e789e6aa1b965f4n);
  assert.equal(toBig(g.nextUint64()), 0x06c45d188009454fn);
});

test('matches a BigInt SplitMix64 for many seeds and draws', () => {
  for (const seed of [1, 42, 123456789, 2 ** 40 + 17, -1, -987654321, Number.MAX_SAFE_INTEGER]) {
    const g = new SamplingGenerator(seed);
    const ref = splitmix64(BigInt.asUintN(64, BigInt(seed)));
    for (let i = 0; i < 500; i++) assert.equal(toBig(g.nextUint64()), ref.next().value, `seed ${seed} draw ${i}`);
  }
});

test('offset jumps: a generator rebuilt at offset k continues the sequence', () => {
  const a = new SamplingGenerator(99);
  const draws = Array.from({ length: 50 }, () => a.random());
  assert.equal(a.offset, 50);
  const b = new SamplingGenerator(99, 20);
  assert.deepEqual(Array.from({ length: 30 }, () => b.random()), draws.slice(20));
  const c = new SamplingGenerator(99);
  c.offset = 45;
  assert.equal(c.random(), draws[45]);
  assert.throws(() => (c.offset = -1), RangeError);
});

test('random() is uniform on [0, 1)', () => {
  const g = new SamplingGenerator(2024);
  const bins = new Array<number>(20).fill(0);
  const N = 100_000;
  let sum = 0;
  for (let i = 0; i < N; i++) {
    const u = g.random();
    assert.ok(u >= 0 && u < 1);
    bins[Math.floor(u * 20)]!++;
    sum += u;
  }
  const e = N / 20;
  const chi2 = bins.reduce((acc, o) => acc + (o - e) ** 2 / e, 0);
  assert.ok(chi2 < 50, `chi2 ${chi2} (df 19)`); // p < 1e-4 at 50
  assert.ok(Math.abs(sum / N - 0.5) < 0.005);
});
