// One step's int32 inputs in one device buffer (one host-to-device copy), laid out
// the same way for the eager path and for the CUDA graphs' static buffer:
//   [inputIds T | positions T | slotMapping T | queryStartLoc S+1 | seqLens S | rows R | blockTables S*W]
// A CUDA graph's layout is its bucket's (S = T = B, R = 0, W for maxModelLen); a
// smaller batch fills the front and the rest is padding (see writeStepInputs).
import type { AttentionMetadata } from '../attention/backends/backend.js';
import type { Tensor } from '../native/index.js';
import type { BatchInputs } from './input_batch.js';

export interface StepInputLayout {
  /** T: token slots. */
  numTokens: number;
  /** S: sequence slots. */
  numSeqs: number;
  /** R: rows of the hidden states that go to the lm_head (prompt-logprob rows, then sampling rows). */
  numRows: number;
  /** W: block-table width. */
  maxBlocksPerSeq: number;
}

/** The tensors of one step's inputs, views of the buffer the layout describes. */
export interface StepInputViews<T> {
  inputIds: T; // [T]
  positions: T; // [T]
  slotMapping: T; // [T]
  queryStartLoc: T; // [S + 1]
  seqLens: T; // [S]
  rows: T; // [R]
  blockTables: T; // [S, W]
}

export function stepInputLength(l: StepInputLayout): number {
  return 3 * l.numTokens + 2 * l.numSeqs + 1 + l.numRows + l.numSeqs * l.maxBlocksPerSeq;
}

function sections(l: StepInputLayout): [keyof StepInputViews<unknown>, number, number[]][] {
  const { numTokens: T, numSeqs: S, numRows: R, maxBlocksPerSeq: W } = l;
  return [
    ['inputIds', T, [T]],
    ['positions', T, [T]],
    ['slotMapping', T, [T]],
    ['queryStartLoc', S + 1, [S + 1]],
    ['seqLens', S, [S]],
    ['rows', R, [R]],
    ['blockTables', S * W, [S, W]],
  ];
}

function viewsOf<T>(l: StepInputLayout, view: (offset: number, length: number, shape: number[]) => T): StepInputViews<T> {
  const out = {} as StepInputViews<T>;
  let offset = 0;
  for (const [name, length, shape] of sections(l)) {
    out[name] = view(offset, length, shape);
    offset += length;
  }
  return out;
}

/** Host views of a packed buffer (stepInputLength(l) int32). */
export function hostStepInputs(host: Int32Array, l: StepInputLayout): StepInputViews<Int32Array> {
  return viewsOf(l, (offset, length) => host.subarray(offset, offset + length));
}

/** Device views of a packed buffer. */
export function deviceStepInputs(dev: Tensor, l: StepInputLayout): StepInputViews<Tensor> {
  return viewsOf(l, (offset, _length, shape) => dev.view(shape, offset));
}

/**
 * Writes a batch into a packed host buffer of layout l (l's slots >= the batch's);
 * b null: all padding. Padding sequences have one query token each, length 1 over
 * the null block, and slot -1 (their key/value is written nowhere).
 */
export function writeStepInputs(host: Int32Array, l: StepInputLayout, b: BatchInputs | null, rows: readonly number[] = []): void {
  const v = hostStepInputs(host, l);
  const n = b?.reqs.length ?? 0;
  const T = b?.numTokens ?? 0;
  if (b) {
    v.inputIds.set(b.inputIds);
    v.positions.set(b.positions);
    v.slotMapping.set(b.slotMapping);
    v.queryStartLoc.set(b.queryStartLoc);
    v.seqLens.set(b.seqLens);
    if (b.maxBlocksPerSeq === l.maxBlocksPerSeq) {
      v.blockTables.set(b.blockTables);
    } else {
      v.blockTables.fill(0);
      for (let r = 0; r < n; r++) {
        v.blockTables.set(b.blockTables.subarray(r * b.maxBlocksPerSeq, (r + 1) * b.maxBlocksPerSeq), r * l.maxBlocksPerSeq);
      }
    }
  } else {
    v.queryStartLoc[0] = 0;
    v.blockTables.fill(0);
  }
  v.rows.set(rows);
  v.inputIds.fill(0, T);
  v.positions.fill(0, T);
  v.slotMapping.fill(-1, T);
  v.seqLens.fill(1, n);
  for (let i = n + 1; i <= l.numSeqs; i++) v.queryStartLoc[i] = v.queryStartLoc[i - 1] + 1;
}

/** The attention metadata over a step's device inputs. */
export function attentionMetadataOf(
  v: StepInputViews<Tensor>,
  l: StepInputLayout,
  step: { maxQueryLen: number; maxSeqLen: number; blockSize: number },
): AttentionMetadata {
  return {
    numSeqs: l.numSeqs,
    numTokens: l.numTokens,
    queryStartLoc: v.queryStartLoc,
    seqLens: v.seqLens,
    blockTables: v.blockTables,
    maxBlocksPerSeq: l.maxBlocksPerSeq,
    slotMapping: v.slotMapping,
    maxQueryLen: step.maxQueryLen,
    maxSeqLen: step.maxSeqLen,
    blockSize: step.blockSize,
  };
}
