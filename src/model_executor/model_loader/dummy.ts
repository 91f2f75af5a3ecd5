// --load-format dummy: every tensor the model asks for is "present" with the shape
// it expects, in the model's dtype. There are no bytes: the model fills such
// tensors itself (vt_fill_random), as vLLM's DummyModelLoader does.
import type { TorchDtype } from '../../config/types.js';
import { ST_DTYPE_BYTES, TORCH_TO_ST_DTYPE, type StDtype, type TensorInfo, type Weights } from './safetensors.js';

export const DUMMY_FILE = '<dummy weights>';

export class DummyWeightSource implements Weights {
  readonly isDummy = true;
  readonly dtype: StDtype;
  private readonly expected = new Map<string, TensorInfo>();

  constructor(dtype: TorchDtype) {
    this.dtype = TORCH_TO_ST_DTYPE[dtype];
  }

  /** The tensors asked for so far. */
  names(): string[] {
    return [...this.expected.keys()];
  }

  has(_name: string): boolean {
    return true;
  }

  info(name: string): TensorInfo {
    const t = this.expected.get(name);
    if (!t) throw new Error(`${DUMMY_FILE}: tensor ${name} has no shape until the model calls expect() for it`);
    return t;
  }

  expect(name: string, shape: readonly number[]): TensorInfo {
    const t: TensorInfo = {
      name,
      dtype: this.dtype,
      shape: [...shape],
      file: DUMMY_FILE,
      offset: 0,
      nbytes: shape.reduce((a, b) => a * b, 1) * ST_DTYPE_BYTES[this.dtype],
    };
    this.expected.set(name, t);
    return t;
  }

  read(name: string): Uint8Array {
    throw new Error(`${DUMMY_FILE}: tensor ${name} has no data; check weights.isDummy and fill it with random values (vt_fill_random)`);
  }

  close(): void {}
}
