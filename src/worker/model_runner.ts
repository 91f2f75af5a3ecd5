// ModelRunner: turns a SchedulerOutput into one forward pass over the batch
// (mixed prefill chunks and decodes), then samples through the sampling seam.
import type { ModelRunnerOutput, SchedulerOutput } from '../core/sched/output.js';
import type { PositionLogprobs } from '../core/types.js';
import type { AttentionBackend } from '../attention/backends/backend.js';
import { check, DType, type NativeOps, type Tensor, type Workspace } from '../native/index.js';
import type { ForwardContext, LayerKVCache } from '../model_executor/forward_context.js';
import type { CausalLM } from '../model_executor/models/interface.js';
import { type BatchInputs, type CachedRequestState, prepareInputs, updateStates } from './input_batch.js';
import type { CudaGraphRunner } from './cuda_graph.js';
import { Pooler } from './pooler.js';
import type { StepSampler } from './sampler.js';
import { attentionMetadataOf, deviceStepInputs, type StepInputLayout, stepInputLength, writeStepInputs } from './step_inputs.js';
import { applyGrammarBitmask } from '../structured_output/apply_bitmask.js';
import type { NgramProposer } from './spec_decode/ngram_proposer.js';
import { rejectionSample } from './spec_decode/rejection_sampler.js';
import { proposeDrafts } from './spec_decode/propose.js';

/** Marks where a step's time goes (metrics/step_timer.ts's StepTimer, handed down by the engine core). */
export interface PhaseTimer {
  readonly enabled: boolean;
  /** Charges the time since the previous mark to `phase`. */
  mark(phase: string): void;
}

const NO_TIMER: PhaseTimer = { enabled: false, mark: () => {} };

export interface ModelRunnerOptions {
  ops: NativeOps;
  act: DType;
  model: CausalLM;
  /** Per-layer paged KV cache. */
  kvCaches: LayerKVCache[];
  blockSize: number;
  vocabSize: number;
  /** Step scratch, reset after every step. */
  ws: Workspace;
  attnBackend: AttentionBackend;
  sampler: StepSampler;
  /** Decode steps replay captured CUDA graphs when set (see Worker.captureModel). */
  graphRunner?: CudaGraphRunner | null;
  /** Where the runner marks its phases (the engine core's StepTimer); none by default. */
  timer?: PhaseTimer;
  /** Speculative decoding: proposes each sampling request's drafts for its next step (null: off). */
  proposer?: NgramProposer | null;
}

/** One step's logits: the sampling rows' (device) and the prompt-logprob rows' (host f32). */
interface StepLogits {
  sampleLogits: Tensor | null;
  promptLogits: Float32Array;
  pooledOutputs: Record<string, number[]>;
}

export class ModelRunner {
  readonly ops: NativeOps;
  readonly act: DType;
  readonly model: CausalLM;
  readonly kvCaches: LayerKVCache[];
  readonly blockSize: number;
  readonly vocabSize: number;
  readonly ws: Workspace;
  readonly attnBackend: AttentionBackend;
  readonly sampler: StepSampler;
  readonly graphRunner: CudaGraphRunner | null;
  readonly timer: PhaseTimer;
  readonly proposer: NgramProposer | null;
  private readonly pooler: Pooler;
  private readonly states = new Map<string, CachedRequestState>();

  constructor(o: ModelRunnerOptions) {
    this.ops = o.ops;
    this.act = o.act;
    this.model = o.model;
    this.kvCaches = o.kvCaches;
    this.blockSize = o.blockSize;
    this.vocabSize = o.vocabSize;
    this.ws = o.ws;
    this.attnBackend = o.attnBackend;
    this.sampler = o.sampler;
    this.graphRunner = o.graphRunner ?? null;
    this.timer = o.timer ?? NO_TIMER;
    this.proposer = o.proposer ?? null;
    this.pooler = new Pooler(o.ops, o.act);
  }

  execute(so: SchedulerOutput): ModelRunnerOutput {
    updateStates(this.states, so);
    this.pooler.updateStates(so);
    if (so.totalNumScheduledTokens === 0) return { reqIds: [], sampledTokenIds: [], logprobs: [], promptLogprobs: {} };
    const batch = prepareInputs(this.states, so, this.blockSize);
    const timer = this.timer;
    timer.mark('prepare');
    try {
      const logits = this.forward(batch);
      timer.mark('forward');
      if (timer.enabled) {
        // Timing mode only: wait for the device so that enqueue and execution are told apart.
        this.ops.synchronize();
        timer.mark('device');
      }
      if (so.grammarBitmask && logits.sampleLogits) {
        // Structured outputs: mask the constrained rows where the logits are, before either sampler.
        const rowReqIds = batch.samplingReqs.flatMap((r, i) => new Array<string>(batch.draftTokenIds[i].length + 1).fill(batch.reqs[r].reqId));
        applyGrammarBitmask(this.ops, this.ws, logits.sampleLogits, so.grammarBitmask, rowReqIds, this.vocabSize, this.act);
      }
      const out = this.sample(batch, logits);
      timer.mark('sample');
      if (this.proposer !== null) {
        out.specTokenIds = proposeDrafts(this.proposer, batch);
        timer.mark('propose');
      }
      return out;
    } finally {
      this.ws.reset();
    }
  }

  /** Runs the model (a captured graph for a decode step that fits one, else eagerly). */
  private forward(b: BatchInputs): StepLogits {
    if (this.graphRunner?.canRun(b)) {
      return { sampleLogits: this.graphRunner.run(this.ws, b), promptLogits: new Float32Array(0), pooledOutputs: {} };
    }
    const { ops, ws } = this;
    const promptRows = b.promptLogprobRows.flatMap((p) => p.rows);
    const rows = [...promptRows, ...b.sampleRows];
    const layout: StepInputLayout = { numTokens: b.numTokens, numSeqs: b.reqs.length, numRows: rows.length, maxBlocksPerSeq: b.maxBlocksPerSeq };
    const host = new Int32Array(stepInputLength(layout));
    writeStepInputs(host, layout, b, rows);
    const dev = ws.alloc([host.length], DType.I32);
    dev.copyFromHost(host);
    const v = deviceStepInputs(dev, layout);
    const attnMetadata = attentionMetadataOf(v, layout, { maxQueryLen: b.maxQueryLen, maxSeqLen: b.maxSeqLen, blockSize: this.blockSize });
    const ctx: ForwardContext = { ops, act: this.act, ws, attnMetadata, attnBackend: this.attnBackend, kvCaches: this.kvCaches };
    const hidden = this.model.forward(ctx, v.inputIds, v.positions); // [numTokens, hidden]
    const pooledOutputs = this.pooler.pool(ws, b, hidden);
    if (rows.length === 0) return { sampleLogits: null, promptLogits: new Float32Array(0), pooledOutputs };
    const width = hidden.shape[1];
    const picked = ws.alloc([rows.length, width], this.act); // [numRows, hidden]
    check(ops, ops.gatherRows(picked.addr, hidden.addr, v.rows.addr, rows.length, width, this.act), 'gather_rows');
    const logits = this.model.computeLogits(ctx, picked); // [numRows, vocab] on the device
    const V = this.vocabSize;
    return {
      promptLogits: promptRows.length ? logits.view([promptRows.length, V]).toF32() : new Float32Array(0),
      sampleLogits: logits.view([b.sampleRows.length, V], promptRows.length * V),
      pooledOutputs,
    };
  }

  private sample(b: BatchInputs, { sampleLogits, promptLogits, pooledOutputs }: StepLogits): ModelRunnerOutput {
    const reqIds = b.reqs.map((r) => r.reqId);
    const sampledTokenIds: number[][] = b.reqs.map(() => []);
    const logprobs: (PositionLogprobs[] | null)[] = b.reqs.map(() => null);
    if (sampleLogits && b.hasDrafts) {
      // Speculative decoding: k + 1 rows per request with drafts, verified by the rejection rule.
      const res = rejectionSample(this.sampler, this.ws, sampleLogits, b.samplingReqs.map((r) => b.reqs[r]), b.draftTokenIds);
      b.samplingReqs.forEach((r, i) => {
        sampledTokenIds[r] = res.tokenIds[i];
        b.reqs[r].outputTokenIds.push(...res.tokenIds[i]);
        logprobs[r] = res.logprobs[i] ? [res.logprobs[i]!] : null;
      });
    } else if (sampleLogits && b.samplingReqs.length > 0) {
      const res = this.sampler.sample(this.ws, sampleLogits, b.samplingReqs.map((r) => b.reqs[r]));
      b.samplingReqs.forEach((r, i) => {
        const tok = res.tokenIds[i];
        sampledTokenIds[r] = [tok];
        b.reqs[r].outputTokenIds.push(tok);
        const lp = res.logprobs[i];
        if (lp) logprobs[r] = [lp];
      });
    }
    const promptLogprobs: Record<string, PositionLogprobs[]> = {};
    let offset = 0;
    for (const p of b.promptLogprobRows) {
      const s = b.reqs[p.req];
      const rows = promptLogits.subarray(offset * this.vocabSize, (offset + p.rows.length) * this.vocabSize);
      promptLogprobs[s.reqId] = this.sampler.promptLogprobs(rows, this.vocabSize, p.nextTokens, s.samplingParams.promptLogprobs ?? 0);
      offset += p.rows.length;
    }
    return { reqIds, sampledTokenIds, logprobs, promptLogprobs, pooledOutputs };
  }

  /** Requests the runner holds state for (for tests and leak checks). */
  get numCachedRequests(): number {
    return this.states.size;
  }
}
