// The sampler seam's structured-output step: once the grammar thread has filled it,
// the step's bitmask goes to the device in one copy and masks the constrained rows of the step's logits in place
// (vt_apply_token_bitmask), before either sampler reads them.
import { check, DType, type NativeOps, type Tensor, type Workspace } from '../native/index.js';
import { awaitGrammarBitmask } from './grammar_bitmask.js';
import type { GrammarBitmask } from './request.js';

/**
 * logits [R, vocab] (act, on the device); rowReqIds [R]: the request of each row.
 * Bitmask rows of requests without a logits row this step are skipped.
 */
export function applyGrammarBitmask(
  ops: NativeOps, ws: Workspace, logits: Tensor, gb: GrammarBitmask, rowReqIds: readonly string[], vocab: number, act: DType,
): void {
  const n = gb.reqIds.length;
  if (n === 0) return;
  const bitmask = awaitGrammarBitmask(gb); // the grammar thread filled it during the forward
  const width = bitmask.length / n;
  const rowOf = new Map(rowReqIds.map((id, i) => [id, i]));
  const picked = gb.reqIds.map((id, i) => [rowOf.get(id), i] as const).filter(([row]) => row !== undefined);
  if (picked.length === 0) return;
  // One upload: [rows m | bitmask m*width] int32.
  const m = picked.length;
  const host = new Int32Array(m + m * width);
  picked.forEach(([row, i], k) => {
    host[k] = row!;
    host.set(bitmask.subarray(i * width, (i + 1) * width), m + k * width);
  });
  const dev = ws.alloc([host.length], DType.I32);
  dev.copyFromHost(host);
  const rows = dev.view([m]); // [m]
  const mask = dev.view([m, width], m); // [m, width]
  check(ops, ops.applyTokenBitmask(logits.addr, mask.addr, rows.addr, m, vocab, width, act), 'apply_token_bitmask');
}
