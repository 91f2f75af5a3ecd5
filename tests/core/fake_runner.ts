// A model runner without a model, to drive the scheduler in tests. It keeps
// the runner's own per-request state from SchedulerOutputs (as the real runner
// does), writes each computed token into a fake paged KV cache (slot =
// blockId * blockSize + offset) and, before sampling, reads every earlier
// position back through the block table: a wrong block id, a shared block that
// was evicted or overwritten, or a bad prefix-cache hit shows up as a KV
// mismatch. The sampled token is a pure function of the token sequence, so
// outputs do not depend on batching, chunking, caching or preemption.
import assert from 'node:assert/strict';
import type { ModelRunnerOutput, SchedulerOutput } from '../../src/core/sched/output.js';
import type { SamplingParams } from '../../src/sampling_params.js';
import { Scheduler } from '../../src/core/sched/scheduler.js';
import { getRequestBlockHasher } from '../../src/core/kv_cache/block_hash.js';
import type { EngineCoreOutput, FinishReason, PositionLogprobs } from '../../src/core/types.js';

export type SampleFn = (reqId: string, tokens: readonly number[]) => number;

/** FNV-1a over the token ids, mapped to 3..999 (0..2 are left for EOS / stop ids in tests). */
export function hashSample(_reqId: string, tokens: readonly number[]): number {
  let h = 0x811c9dc5;
  for (const t of tokens) {
    h ^= t & 0xffff;
    h = Math.imul(h, 0x01000193) >>> 0;
    h ^= t >>> 16;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return 3 + (h % 997);
}

interface RunnerReq {
  tokens: number[];
  blockIds: number[];
  numComputed: number;
  numPrompt: number;
  sp: SamplingParams;
}

export class FakeRunner {
  private readonly kvToken: Int32Array;
  private readonly kvPos: Int32Array;
  readonly state = new Map<string, RunnerReq>();
  /** Prompt tokens computed (not served by the prefix cache), summed over the run. */
  numPromptTokensComputed = 0;

  constructor(
    readonly blockSize: number,
    numBlocks: number,
    readonly sample: SampleFn = hashSample,
  ) {
    this.kvToken = new Int32Array(numBlocks * blockSize).fill(-1);
    this.kvPos = new Int32Array(numBlocks * blockSize).fill(-1);
  }

  private slot(r: RunnerReq, pos: number): number {
    const b = Math.floor(pos / this.blockSize);
    assert.ok(b < r.blockIds.length, `position ${pos} has no block (table ${r.blockIds})`);
    assert.notEqual(r.blockIds[b], 0, 'the null block was handed to a request');
    return r.blockIds[b] * this.blockSize + (pos % this.blockSize);
  }

  execute(out: SchedulerOutput): ModelRunnerOutput {
    for (const id of out.finishedReqIds) this.state.delete(id);
    for (const id of out.preemptedReqIds) this.state.delete(id);
    for (const nr of out.scheduledNewReqs) {
      assert.ok(!this.state.has(nr.reqId), `${nr.reqId} scheduled as new while the runner has its state`);
      this.state.set(nr.reqId, {
        tokens: [...nr.promptTokenIds, ...nr.outputTokenIds],
        blockIds: nr.blockIds.slice(),
        numComputed: nr.numComputedTokens,
        numPrompt: nr.promptTokenIds.length,
        sp: nr.samplingParams,
      });
    }
    const cached = out.scheduledCachedReqs;
    cached.reqIds.forEach((id, i) => {
      const r = this.state.get(id);
      assert.ok(r, `${id} scheduled as cached but unknown to the runner`);
      assert.equal(cached.numComputedTokens[i], r.numComputed, `${id}: numComputedTokens disagrees with the runner`);
      r.blockIds.push(...cached.newBlockIds[i]);
    });
    const order = [...cached.reqIds, ...out.scheduledNewReqs.map((r) => r.reqId)];
    assert.deepEqual(new Set(order), new Set(Object.keys(out.numScheduledTokens)));

    // Phase 1: every scheduled token writes its KV (as each attention layer does before attending).
    const written = new Set<number>();
    for (const id of order) {
      const r = this.state.get(id)!;
      const n = out.numScheduledTokens[id];
      assert.ok(n > 0);
      assert.ok(r.numComputed + n <= r.tokens.length, `${id}: scheduled past its known tokens`);
      for (let p = r.numComputed; p < r.numComputed + n; p++) {
        const s = this.slot(r, p);
        assert.ok(!written.has(s), `slot ${s} written twice in one step`);
        written.add(s);
        this.kvToken[s] = r.tokens[p];
        this.kvPos[s] = p;
        if (p < r.numPrompt) this.numPromptTokensComputed++;
      }
    }
    // Phase 2: read the whole context back, then sample at the end of the known tokens.
    const res: ModelRunnerOutput = { reqIds: [], sampledTokenIds: [], logprobs: [], promptLogprobs: {} };
    for (const id of order) {
      const r = this.state.get(id)!;
      const start = r.numComputed;
      const end = start + out.numScheduledTokens[id];
      for (let p = 0; p < end; p++) {
        const s = this.slot(r, p);
        if (this.kvToken[s] !== r.tokens[p] || this.kvPos[s] !== p) {
          assert.fail(`${id}: KV at position ${p} (slot ${s}) holds token ${this.kvToken[s]}@${this.kvPos[s]}, expected ${r.tokens[p]}@${p}`);
        }
      }
      r.numComputed = end;
      if (r.sp.promptLogprobs !== null) {
        // Logits at positions start..end-1 give the logprobs of prompt tokens start+1..end.
        const pl: PositionLogprobs[] = [];
        for (let t = start + 1; t <= Math.min(end, r.numPrompt - 1); t++) {
          pl.push({ tokenIds: [r.tokens[t]], logprobs: [-t], rank: 1 });
        }
        if (pl.length > 0) res.promptLogprobs[id] = pl;
      }
      const sampled: number[] = [];
      if (end === r.tokens.length) {
        const t = this.sample(id, r.tokens);
        r.tokens.push(t);
        sampled.push(t);
      }
      res.reqIds.push(id);
      res.sampledTokenIds.push(sampled);
      res.logprobs.push(
        r.sp.logprobs !== null && sampled.length > 0 ? [{ tokenIds: [sampled[0]], logprobs: [-0.5], rank: 1 }] : null,
      );
    }
    return res;
  }
}

export interface RunResult {
  tokenIds: number[];
  finishReason: FinishReason | null;
  stopReason: number | string | null;
  numCachedTokens: number;
  outputs: EngineCoreOutput[];
}

export interface StepHook {
  (step: number, out: SchedulerOutput, runningBefore: string[]): void;
}

/** Runs the scheduler and the fake runner until nothing is left; checks the per-step invariants. */
export function runToCompletion(
  sched: Scheduler,
  runner: FakeRunner,
  opts: {
    onStep?: StepHook;
    beforeStep?: (step: number) => void;
    maxSteps?: number;
    /** Keep stepping (possibly idle) until this step, for arrivals added by beforeStep. */
    minSteps?: number;
    /** Filled as outputs arrive (hooks may read it mid-run). */
    results?: Map<string, RunResult>;
  } = {},
): Map<string, RunResult> {
  const results = opts.results ?? new Map<string, RunResult>();
  const maxSteps = opts.maxSteps ?? 10_000;
  for (let step = 0; ; step++) {
    assert.ok(step < maxSteps, 'the workload did not finish (livelock?)');
    opts.beforeStep?.(step);
    if (!sched.hasRequests() && step >= (opts.minSteps ?? 0)) break;
    const runningBefore = sched.running.map((r) => r.requestId);
    const out = sched.schedule();
    const total = Object.values(out.numScheduledTokens).reduce((a, b) => a + b, 0);
    assert.equal(out.totalNumScheduledTokens, total);
    assert.ok(total <= sched.maxNumScheduledTokens, `step ${step}: ${total} tokens > budget`);
    assert.ok(sched.running.length <= sched.maxNumRunningReqs);
    opts.onStep?.(step, out, runningBefore);
    const mro = runner.execute(out);
    const eco = sched.updateFromOutput(out, mro);
    for (const o of eco.outputs) {
      let r = results.get(o.requestId);
      if (r === undefined) {
        r = { tokenIds: [], finishReason: null, stopReason: null, numCachedTokens: o.numCachedTokens, outputs: [] };
        results.set(o.requestId, r);
      }
      assert.equal(r.finishReason, null, `${o.requestId}: output after it finished`);
      r.tokenIds.push(...o.newTokenIds);
      r.finishReason = o.finishReason;
      r.stopReason = o.stopReason;
      r.outputs.push(o);
    }
  }
  return results;
}

/** The block pool is back to fully free: every refCnt 0, numBlocks - 1 free (the null block aside). */
export function assertPoolFree(sched: Scheduler): void {
  const pool = sched.kvCacheManager.blockPool;
  for (const b of pool.blocks) assert.equal(b.refCnt, 0, `block ${b.blockId} still has refCnt ${b.refCnt}`);
  assert.equal(pool.getNumFreeBlocks(), pool.numBlocks - 1);
  assert.equal(sched.kvCacheManager.usage, 0);
}

/**
 * Independent reference: what a request generates when run alone, token by
 * token, with the stop rules written out plainly.
 */
export function referenceGenerate(
  reqId: string,
  prompt: readonly number[],
  o: { maxTokens: number | null; minTokens?: number; eos?: number[]; ignoreEos?: boolean; stopTokenIds?: number[]; maxModelLen: number },
  sample: SampleFn = hashSample,
): { tokenIds: number[]; finishReason: FinishReason; stopReason: number | null } {
  const tokens = [...prompt];
  const out: number[] = [];
  for (;;) {
    const t = sample(reqId, tokens);
    tokens.push(t);
    out.push(t);
    if (out.length >= (o.minTokens ?? 0)) {
      if (!o.ignoreEos && (o.eos ?? []).includes(t)) return { tokenIds: out, finishReason: 'stop', stopReason: null };
      if ((o.stopTokenIds ?? []).includes(t)) return { tokenIds: out, finishReason: 'stop', stopReason: t };
    }
    if ((o.maxTokens !== null && out.length >= o.maxTokens) || tokens.length >= o.maxModelLen) {
      return { tokenIds: out, finishReason: 'length', stopReason: null };
    }
  }
}

export interface TestSetup {
  blockSize?: number;
  numBlocks?: number;
  maxNumSeqs?: number;
  maxNumBatchedTokens?: number;
  maxModelLen?: number;
  enableChunkedPrefill?: boolean;
  enablePrefixCaching?: boolean;
  longPrefillTokenThreshold?: number;
}

/**
 * The prefix cache's hasher for makeScheduler's block size (4): tests build their
 * Requests with it, as EngineCore.addRequest does with the scheduler's.
 */
export const blockHasher = getRequestBlockHasher(4);

export function makeScheduler(s: TestSetup = {}): Scheduler {
  return new Scheduler(
    {
      maxNumSeqs: s.maxNumSeqs ?? 64,
      maxNumBatchedTokens: s.maxNumBatchedTokens ?? 256,
      maxModelLen: s.maxModelLen ?? 1024,
      enableChunkedPrefill: s.enableChunkedPrefill ?? true,
      maxWaitingRequests: Infinity,
    },
    { blockSize: s.blockSize ?? 4, numBlocks: s.numBlocks ?? 1000, enablePrefixCaching: s.enablePrefixCaching ?? true },
    { longPrefillTokenThreshold: s.longPrefillTokenThreshold },
  );
}

/** Prompt [base, base+1, ..., base+len-1] (distinct prompts for distinct bases). */
export function seqPrompt(len: number, base = 1000): number[] {
  return Array.from({ length: len }, (_, i) => base + i);
}
