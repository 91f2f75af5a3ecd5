// The flag: --tensor-parallel-size N and vLLM's -tp N / -tp=N reach EngineArgs'
// tensorParallelSize (default 1); a bad value is refused in the flag's own words.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Command } from 'commander';
import { addEngineFlags, engineArgsFromFlags, expandVllmShortFlags } from '../../src/entrypoints/cli/engine_flags.js';
import { validateEngineArgs } from '../../src/config/validate_engine_args.js';

const parse = (...argv: string[]) => {
  const cmd = addEngineFlags(new Command('serve').argument('<model>')).exitOverride().configureOutput({ writeErr: () => {} });
  cmd.parse(expandVllmShortFlags(['m', ...argv]), { from: 'user' });
  return engineArgsFromFlags('m', cmd.opts());
};

test('--tensor-parallel-size, -tp N and -tp=N set tensorParallelSize; 1 by default', () => {
  assert.equal(parse().tensorParallelSize, 1);
  assert.equal(parse('--tensor-parallel-size', '2').tensorParallelSize, 2);
  assert.equal(parse('-tp', '4').tensorParallelSize, 4);
  assert.equal(parse('-tp=2').tensorParallelSize, 2);
  assert.deepEqual(expandVllmShortFlags(['serve', 'm', '-t', '-tpx', '--tp']), ['serve', 'm', '-t', '-tpx', '--tp'], 'other flags untouched');
});

test('a tensor-parallel size that is not a positive integer is refused naming the flag', () => {
  assert.throws(() => validateEngineArgs({ model: 'm', tensorParallelSize: 0 }), /--tensor-parallel-size \(tensorParallelSize\) must be a positive integer/);
  assert.throws(() => validateEngineArgs({ model: 'm', tensorParallelSize: 1.5 }), /--tensor-parallel-size \(tensorParallelSize\) must be a positive integer/);
  assert.throws(() => parse('-tp', 'two'));
});
