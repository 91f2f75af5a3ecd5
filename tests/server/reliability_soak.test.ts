// The short soak (CI): 200 requests from 24 clients against `vllm-ts serve` with a
// small KV cache, with every check of the long one (tests/soak/soak.ts, `npm run
// test:soak`). It lives here because `npm test` leaves tests/soak/ out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatSummary, runSoak, soakFailures } from '../soak/soak.js';

test('short soak: 200 mixed requests (aborts, malformed, n <= 4, preemption) all end as they must', { timeout: 240_000 }, async () => {
  const summary = await runSoak({
    requests: 200,
    concurrency: 24,
    seed: Number(process.env.SOAK_SEED ?? 7),
    timeoutMs: 180_000,
    requestTimeoutMs: 120_000,
    // NOTE: a warm-up as long as the run, so that RSS is first read with the heaps at their working size.
    warmupRequests: 200,
    log: () => {},
  });
  const failures = soakFailures(summary, { requirePreemption: true });
  assert.deepEqual(failures, [], formatSummary(summary));
  assert.ok(summary.outcomes.outputsChecked > 50, `${summary.outcomes.outputsChecked} outputs checked against the request run alone`);
  assert.ok(summary.outcomes.aborted > 0 && summary.requests.malformed > 0);
  if (process.env.SOAK_VERBOSE) console.log(formatSummary(summary));
});
