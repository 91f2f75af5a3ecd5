import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Request, RequestStatus } from '../../src/core/request.js';
import { getRequestBlockHasher, hashBlockTokens } from '../../src/core/kv_cache/block_hash.js';
import { SamplingParams } from '../../src/sampling_params.js';
import type { EngineCoreRequest } from '../../src/core/types.js';

function ecr(prompt: number[], sp: Partial<SamplingParams> = {}, cacheSalt?: string): EngineCoreRequest {
  // As the core's thread entry hands it on: posted (a plain object), then re-hydrated once.
  const plain = JSON.parse(JSON.stringify(new SamplingParams(sp)));
  return { requestId: 'r', promptTokenIds: prompt, samplingParams: SamplingParams.fromPlain(plain), eosTokenIds: [2], arrivalTime: 12.5, priority: 0, cacheSalt };
}

test('Request.fromEngineCoreRequest: fields, counters, sampling params', () => {
  const r = Request.fromEngineCoreRequest(ecr([5, 6, 7], { maxTokens: 3, temperature: 0 }));
  assert.equal(r.requestId, 'r');
  assert.deepEqual(r.promptTokenIds, [5, 6, 7]);
  assert.ok(r.samplingParams instanceof SamplingParams);
  assert.equal(r.samplingParams.greedy, true);
  assert.deepEqual(r.eosTokenIds, [2]);
  assert.equal(r.arrivalTime, 12.5);
  assert.equal(r.status, RequestStatus.WAITING);
  assert.equal(r.numPromptTokens, 3);
  assert.equal(r.numTokens, 3);
  assert.equal(r.numComputedTokens, 0);
  assert.equal(r.numCachedTokens, -1);
  assert.equal(r.maxTokens, 3);
  assert.equal(r.cacheSalt, null);
  r.appendOutputTokenIds(9);
  r.appendOutputTokenIds([10, 11]);
  assert.deepEqual(r.outputTokenIds, [9, 10, 11]);
  assert.deepEqual(r.allTokenIds, [5, 6, 7, 9, 10, 11]);
  assert.equal(r.numTokens, 6);
  assert.equal(r.numOutputTokens, 3);
  assert.equal(Request.fromEngineCoreRequest(ecr([1], { maxTokens: null })).maxTokens, Infinity);
});

test('Request: finished statuses and reasons', () => {
  const r = Request.fromEngineCoreRequest(ecr([1]));
  const cases: [RequestStatus, string | null, boolean][] = [
    [RequestStatus.WAITING, null, false],
    [RequestStatus.RUNNING, null, false],
    [RequestStatus.PREEMPTED, null, false],
    [RequestStatus.FINISHED_STOPPED, 'stop', true],
    [RequestStatus.FINISHED_LENGTH_CAPPED, 'length', true],
    [RequestStatus.FINISHED_ABORTED, 'abort', true],
    [RequestStatus.FINISHED_IGNORED, 'length', true],
  ];
  for (const [status, reason, finished] of cases) {
    r.status = status;
    assert.equal(r.isFinished, finished, status);
    assert.equal(r.getFinishedReason(), reason, status);
  }
});

test('Request: promptLogprobs requests skip reading the prefix cache', () => {
  assert.equal(Request.fromEngineCoreRequest(ecr([1])).skipReadingPrefixCache, false);
  assert.equal(Request.fromEngineCoreRequest(ecr([1], { promptLogprobs: 0 })).skipReadingPrefixCache, true);
});

test('block hashes: full blocks only, computed incrementally as tokens arrive', () => {
  const hasher = getRequestBlockHasher(4);
  const r = Request.fromEngineCoreRequest(ecr([1, 2, 3, 4, 5, 6]), hasher);
  assert.equal(r.blockHashes.length, 1);
  r.appendOutputTokenIds(7);
  assert.equal(r.blockHashes.length, 1, 'partial block: no hash');
  r.appendOutputTokenIds([8, 9, 10, 11, 12, 13]);
  assert.equal(r.blockHashes.length, 3);
  // Same tokens given as a prompt at once: same hashes.
  const whole = Request.fromEngineCoreRequest(ecr([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]), hasher);
  assert.deepEqual(whole.blockHashes, r.blockHashes);
});

test('block hashes: chained (equal hash <=> equal whole prefix), salted, fixed-width encoding', () => {
  const hasher = getRequestBlockHasher(2);
  const mk = (p: number[], salt?: string) => Request.fromEngineCoreRequest(ecr(p, {}, salt), hasher).blockHashes;
  const a = mk([1, 2, 3, 4, 5, 6]);
  const b = mk([1, 2, 3, 4, 9, 9]);
  const c = mk([9, 9, 3, 4, 5, 6]);
  assert.equal(a.length, 3);
  assert.equal(new Set(a).size, 3);
  assert.deepEqual(a.slice(0, 2), b.slice(0, 2));
  assert.notEqual(a[2], b[2]);
  // Same tokens in block 1 and 2, different parent: every later hash differs.
  assert.notEqual(a[1], c[1]);
  assert.notEqual(a[2], c[2]);
  // The salt changes the first block, and the chain carries it on.
  const s1 = mk([1, 2, 3, 4, 5, 6], 'tenant-1');
  const s2 = mk([1, 2, 3, 4, 5, 6], 'tenant-2');
  for (let i = 0; i < 3; i++) {
    assert.notEqual(s1[i], a[i]);
    assert.notEqual(s1[i], s2[i]);
  }
  assert.deepEqual(mk([1, 2, 3, 4, 5, 6], 'tenant-1'), s1);
  // Token ids are fixed-width: no two lists collide through concatenation.
  assert.notEqual(hashBlockTokens(null, [1, 23]), hashBlockTokens(null, [12, 3]));
  assert.notEqual(hashBlockTokens(null, [256]), hashBlockTokens(null, [1, 0]));
  assert.notEqual(hashBlockTokens(null, [1], ['']), hashBlockTokens(null, [1]));
  // A sha256 digest.
  assert.match(a[0], /^[0-9a-f]{64}$/);
  assert.notEqual(a[0], createHash('sha256').update('').digest('hex'));
});
