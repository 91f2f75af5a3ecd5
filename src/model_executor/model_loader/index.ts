// Entry point of the model loader: the weights a model reads, by --load-format.
import type { ModelConfig } from '../../config/types.js';
import { DummyWeightSource } from './dummy.js';
import { WeightSource, type Weights } from './safetensors.js';

export type LoadFormat = 'auto' | 'safetensors' | 'dummy';

export function openWeights(config: ModelConfig, loadFormat: LoadFormat = 'auto'): Weights {
  if (loadFormat === 'dummy') return new DummyWeightSource(config.dtype);
  return WeightSource.open(config.model);
}

export { DummyWeightSource } from './dummy.js';
export { WeightSource, WeightFileError, ST_DTYPE_BYTES, TORCH_TO_ST_DTYPE } from './safetensors.js';
export type { StDtype, TensorInfo, Weights } from './safetensors.js';
