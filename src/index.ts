// vllm-ts public API: every class, function and type the API takes or returns.
import { fileURLToPath } from 'node:url';
import type { SamplingParamsInput } from './sampling_params.js';

/** Absolute path of the embedded model (models/tiny-llama-kjv: a 7M-parameter Llama trained on the King James Bible). */
export const TINY_MODEL: string = fileURLToPath(new URL('../models/tiny-llama-kjv', import.meta.url));

export { LLM, type LLMOptions, type ChatOptions, type SamplingParamsArg } from './entrypoints/llm.js';
export type { BeamSearchOutput, BeamSearchParams, BeamSearchSequence } from './entrypoints/beam_search.js';
export { LLMEngine } from './engine/llm_engine.js';
export { AsyncLLM, type GenerateOptions } from './engine/async_llm.js';
export { EngineCore } from './engine/core.js';
export type { PromptType, ProcessOptions } from './engine/processor.js';
export type { EngineCoreOutputs, EngineCoreOutput, EngineCoreEvent, EngineCoreRequest, FinishReason, PositionLogprobs, SchedulerStats } from './core/types.js';
export { SamplingParams, SamplingParamsError, type RequestOutputKind, type SamplingParamsInput } from './sampling_params.js';
/** What LLM.generate / SamplingParams.create take: any of SamplingParams' fields (vLLM's defaults fill the rest). */
export type SamplingParamsInit = SamplingParamsInput;
export type { CompletionOutput, EmbeddingRequestOutput, Logprob, PromptLogprobs, RequestMetrics, RequestOutput, SampleLogprobs } from './outputs.js';
export type { PoolingParams, PoolingType } from './pooling_params.js';
export type { EngineArgs, DeviceArg, DtypeArg } from './config/engine_args.js';
export type { CacheConfig, ModelConfig, RopeConfig, SchedulerConfig, TorchDtype } from './config/types.js';
export { Tokenizer, ChatTemplateError, type ApplyChatTemplateOptions, type ChatMessage, type DecodeOptions, type EncodeOptions } from './tokenizer/tokenizer.js';
export type { IterationStats, FinishedRequestStats, StatLogger } from './metrics/stats.js';
export { VllmError, InvalidRequestError, NotFoundError, EngineOverloadedError, EngineDeadError } from './errors.js';
export { HubError, hubCacheDir, resolveModelPath, type DownloadProgressEvent, type DownloadProgressOption, type ResolveOptions } from './hub/index.js';
export { supportedArchitectures } from './model_executor/models/registry.js';
