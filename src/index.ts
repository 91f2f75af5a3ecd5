// vllm-ts public API.
export { LLM, type LLMOptions, type ChatOptions } from './entrypoints/llm.js';
export { LLMEngine } from './engine/llm_engine.js';
export { AsyncLLM } from './engine/async_llm.js';
export { EngineCore } from './engine/core.js';
export type { PromptType } from './engine/processor.js';
export { SamplingParams, type SamplingParamsInit, type RequestOutputKind } from './sampling_params.js';
export type { CompletionOutput, Logprob, PromptLogprobs, RequestOutput, SampleLogprobs } from './outputs.js';
export type { EngineArgs } from './config/engine_args.js';
export type { ModelConfig } from './config/types.js';
export { Tokenizer } from './tokenizer/tokenizer.js';
export { VllmError, InvalidRequestError, NotFoundError, EngineOverloadedError, EngineDeadError } from './errors.js';
export { supportedArchitectures } from './model_executor/models/registry.js';
