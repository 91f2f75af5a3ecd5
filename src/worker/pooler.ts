// Embedding requests (vLLM's pooling runner for decoder-only models): each step adds
// the hidden rows an embedding request pools to its running sum; once its prompt is
// complete, the pooled vector is its output. Generation requests never come here:
// the runner calls the pooler once per step, and it returns at once when the step
// has no embedding request.
import type { SchedulerOutput } from '../core/sched/output.js';
import { check, DType, type NativeOps, type Tensor, type Workspace } from '../native/index.js';
import { finishPooling } from '../pooling_params.js';
import type { BatchInputs } from './input_batch.js';

interface PoolingRows {
  /** Index into the batch's reqs. */
  req: number;
  /** Token rows (indices into the step's hidden states) to add. */
  rows: number[];
  /** The prompt is complete after this step: its vector is ready. */
  complete: boolean;
}

export class Pooler {
  /** Running sum of pooled hidden rows per embedding request in the runner. */
  private readonly sums = new Map<string, { sum: Float64Array | null; count: number }>();

  constructor(readonly ops: NativeOps, readonly act: DType) {}

  /** Tracks the embedding requests of a SchedulerOutput (call with the runner's updateStates). */
  updateStates(so: SchedulerOutput): void {
    if (this.sums.size > 0) {
      for (const id of so.finishedReqIds) this.sums.delete(id);
      for (const id of so.preemptedReqIds) this.sums.delete(id);
    }
    for (const r of so.scheduledNewReqs) {
      if (r.poolingParams) this.sums.set(r.reqId, { sum: null, count: 0 });
    }
  }

  /**
   * Adds this step's rows of its embedding requests to their sums; returns the
   * vectors of those whose prompt is now complete. hidden [numTokens, hidden] (device)
   */
  pool(ws: Workspace, b: BatchInputs, hidden: Tensor): Record<string, number[]> {
    const out: Record<string, number[]> = {};
    if (this.sums.size === 0) return out;
    const plan = this.plan(b);
    const rows = plan.flatMap((p) => p.rows);
    if (rows.length > 0) this.accumulate(ws, b, plan, rows, hidden);
    for (const p of plan) {
      const s = b.reqs[p.req];
      const acc = this.sums.get(s.reqId)!;
      if (p.complete) out[s.reqId] = finishPooling(acc.sum!, acc.count, s.poolingParams!);
    }
    return out;
  }

  private plan(b: BatchInputs): PoolingRows[] {
    const plan: PoolingRows[] = [];
    b.reqs.forEach((s, r) => {
      if (!s.poolingParams) return;
      const t = b.queryStartLoc[r];
      const n = b.queryStartLoc[r + 1] - t;
      const complete = b.seqLens[r] >= s.promptTokenIds.length;
      const rows = s.poolingParams.pooling === 'mean' ? Array.from({ length: n }, (_, j) => t + j) : complete ? [t + n - 1] : [];
      plan.push({ req: r, rows, complete });
    });
    return plan;
  }

  private accumulate(ws: Workspace, b: BatchInputs, plan: PoolingRows[], rows: number[], hidden: Tensor): void {
    const { ops, act } = this;
    const width = hidden.shape[1];
    const idx = ws.alloc([rows.length], DType.I32);
    idx.copyFromHost(Int32Array.from(rows));
    const picked = ws.alloc([rows.length, width], act); // [numPooledRows, hidden]
    check(ops, ops.gatherRows(picked.addr, hidden.addr, idx.addr, rows.length, width, act), 'gather_rows');
    const host = picked.toF32();
    let k = 0;
    for (const p of plan) {
      const acc = this.sums.get(b.reqs[p.req].reqId)!;
      acc.sum ??= new Float64Array(width);
      for (const _ of p.rows) {
        for (let d = 0; d < width; d++) acc.sum[d] += host[k * width + d];
        k++;
      }
      acc.count += p.rows.length;
    }
  }
}
