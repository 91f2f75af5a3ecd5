// The n-gram proposer against vLLM's documented examples and a brute-force search
// (every n from max down to min, every earlier occurrence, earliest first).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findNgramDraft, NgramProposer, tokenSequence } from '../../src/worker/spec_decode/ngram_proposer.js';
import { resolveSpeculativeConfig } from '../../src/config/speculative.js';
import { rng } from '../sampling/reference.js';

const draft = (tokens: number[], minN: number, maxN: number, k: number) => findNgramDraft(tokenSequence(tokens), minN, maxN, k);

/** The longest n in [minN, maxN] whose suffix occurs earlier (ending before the last token); its earliest occurrence's next k tokens. */
function bruteForce(tokens: number[], minN: number, maxN: number, k: number): number[] {
  const N = tokens.length;
  for (let n = Math.min(maxN, N - 1); n >= minN; n--) {
    const suffix = tokens.slice(N - n);
    for (let start = 0; start + n <= N - 1; start++) {
      if (tokens.slice(start, start + n).every((t, i) => t === suffix[i])) return tokens.slice(start + n, Math.min(N, start + n + k));
    }
  }
  return [];
}

test("vLLM's examples: [1,2,3,4,2,3] with n in [2,3] and k=4 drafts [4,2,3]", () => {
  assert.deepEqual(draft([1, 2, 3, 4, 2, 3], 2, 3, 4), [4, 2, 3]);
  assert.deepEqual(draft([1, 2, 3, 4, 1, 2, 3], 2, 2, 2), [4, 1]);
  assert.deepEqual(draft([1, 2, 3, 4, 1, 2, 3], 3, 3, 2), [4, 1]);
  assert.deepEqual(draft([1, 2, 3, 4, 1, 2, 3], 4, 4, 2), []);
  assert.deepEqual(draft([1, 2, 3, 4, 1, 2, 3, 5, 1, 2, 3], 2, 3, 3), [4, 1, 2], 'the earliest occurrence of the longest match');
});

test('the longest n wins over an earlier shorter match; no match below min', () => {
  // Suffix [7, 8, 9]: [8, 9] occurs first at 1, [7, 8, 9] only at 5.
  assert.deepEqual(draft([0, 8, 9, 1, 2, 7, 8, 9, 3, 4, 7, 8, 9], 2, 3, 2), [3, 4]);
  assert.deepEqual(draft([0, 8, 9, 1, 2, 7, 8, 9, 3, 4, 7, 8, 9], 2, 2, 2), [1, 2]);
  assert.deepEqual(draft([1, 2, 3, 4, 5], 1, 3, 3), []);
  assert.deepEqual(draft([5, 5], 1, 1, 3), [5], 'a run: the match may overlap the suffix');
  assert.deepEqual(draft([5, 5, 5, 5], 2, 4, 3), [5], 'the longest match (3, ending before the last token) leaves one token after it');
  assert.deepEqual(draft([1], 1, 2, 3), []);
});

test('agrees with a brute-force search on random token sequences', () => {
  const rand = rng(17);
  let matched = 0;
  for (let c = 0; c < 3000; c++) {
    const vocab = 2 + Math.floor(rand() * 5);
    const tokens = Array.from({ length: 1 + Math.floor(rand() * 40) }, () => Math.floor(rand() * vocab));
    const minN = 1 + Math.floor(rand() * 3);
    const maxN = minN + Math.floor(rand() * 3);
    const k = 1 + Math.floor(rand() * 5);
    const want = bruteForce(tokens, minN, maxN, k);
    assert.deepEqual(draft(tokens, minN, maxN, k), want, JSON.stringify({ tokens, minN, maxN, k }));
    if (want.length > 0) matched++;
  }
  assert.ok(matched > 1000, `${matched} cases had a draft`);
});

test('NgramProposer caps drafts at K, at maxModelLen and at what max_tokens allows', () => {
  const cfg = resolveSpeculativeConfig({ method: 'ngram', num_speculative_tokens: 3, prompt_lookup_max: 4, prompt_lookup_min: 2 })!;
  const tokens = [1, 2, 3, 4, 5, 6, 7, 8, 1, 2];
  assert.deepEqual(new NgramProposer(cfg, 100).propose(tokenSequence(tokens)), [3, 4, 5]);
  assert.deepEqual(new NgramProposer(cfg, 12).propose(tokenSequence(tokens)), [3, 4]);
  assert.deepEqual(new NgramProposer(cfg, 100).propose(tokenSequence(tokens), 1), [3]);
  assert.deepEqual(new NgramProposer(cfg, 100).propose(tokenSequence(tokens), 0), []);
});

test("speculative config: vLLM's defaults and errors", () => {
  assert.deepEqual(resolveSpeculativeConfig({ method: 'ngram', num_speculative_tokens: 2 }), {
    method: 'ngram', numSpeculativeTokens: 2, promptLookupMax: 5, promptLookupMin: 5,
  });
  assert.deepEqual(resolveSpeculativeConfig({ method: '[ngram]', numSpeculativeTokens: 2, promptLookupMax: 3 }), {
    method: 'ngram', numSpeculativeTokens: 2, promptLookupMax: 3, promptLookupMin: 3,
  });
  assert.equal(resolveSpeculativeConfig(null), null);
  assert.throws(() => resolveSpeculativeConfig({ method: 'eagle', num_speculative_tokens: 2 }), /method "eagle" is not supported/);
  assert.throws(() => resolveSpeculativeConfig({ method: 'ngram' }), /num_speculative_tokens is required/);
  assert.throws(() => resolveSpeculativeConfig({ method: 'ngram', num_speculative_tokens: 0 }), /positive integer/);
  assert.throws(() => resolveSpeculativeConfig({ method: 'ngram', num_speculative_tokens: 2, prompt_lookup_min: 4, prompt_lookup_max: 2 }), /prompt_lookup_min=4 must be <= prompt_lookup_max=2/);
  assert.throws(() => resolveSpeculativeConfig({ method: 'ngram', num_speculative_tokens: 2, typo: 1 } as never), /unknown key 'typo'/);
});

test('--speculative-config on the CLI and speculativeConfig in EngineArgs', async () => {
  const { Command } = await import('commander');
  const { addEngineFlags, engineArgsFromFlags } = await import('../../src/entrypoints/cli/engine_flags.js');
  const { validateEngineArgs } = await import('../../src/config/validate_engine_args.js');
  const parse = (...argv: string[]) => {
    const cmd = addEngineFlags(new Command('serve').argument('<model>')).exitOverride().configureOutput({ writeErr: () => {} });
    cmd.parse(['m', ...argv], { from: 'user' });
    return engineArgsFromFlags('m', cmd.opts());
  };
  const json = '{"method": "ngram", "num_speculative_tokens": 3, "prompt_lookup_max": 4, "prompt_lookup_min": 2}';
  assert.deepEqual(resolveSpeculativeConfig(parse('--speculative-config', json).speculativeConfig), {
    method: 'ngram', numSpeculativeTokens: 3, promptLookupMax: 4, promptLookupMin: 2,
  });
  assert.equal(parse().speculativeConfig, undefined);
  assert.throws(() => parse('--speculative-config', '{"method": "ngram"'), /expected JSON/);
  assert.throws(() => parse('--speculative-config', '{"method": "medusa", "num_speculative_tokens": 3}'), /method "medusa" is not supported/);
  assert.throws(() => validateEngineArgs({ model: 'm', speculativeConfig: { method: 'ngram', num_speculative_tokens: -1 } }),
    /--speculative-config \(speculativeConfig\): speculative_config: num_speculative_tokens must be a positive integer/);
});
