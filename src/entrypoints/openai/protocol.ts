// Request schemas (zod 4) and response shapes of the OpenAI-compatible API, with
// vLLM's extra request fields. Fields stay snake_case as on the wire; unknown fields
// are dropped (z.object strips them), as vLLM ignores them.
import { z } from 'zod';

const int = () => z.number().int();
const num = () => z.number();
const tokenIds = z.array(int());

export const StreamOptionsSchema = z.object({
  include_usage: z.boolean().nullish(),
  continuous_usage_stats: z.boolean().nullish(),
});

const StopSchema = z.union([z.string(), z.array(z.string())]).nullish();

/** Sampling fields shared by /v1/completions and /v1/chat/completions. */
const samplingFields = {
  model: z.string().nullish(),
  frequency_penalty: num().nullish(),
  presence_penalty: num().nullish(),
  logit_bias: z.record(z.string(), num()).nullish(),
  n: int().nullish(),
  // NOTE: any integer (vLLM allows the 64-bit range, checked in request_fields.ts), not only safe ones.
  seed: num().refine(Number.isInteger, 'Input should be a valid integer').nullish(),
  stop: StopSchema,
  stream: z.boolean().nullish(),
  stream_options: StreamOptionsSchema.nullish(),
  temperature: num().nullish(),
  top_p: num().nullish(),
  user: z.string().nullish(),
  // vLLM's extras
  use_beam_search: z.boolean().nullish(),
  /** Beam search's length normalization exponent (score = cumulative logprob / length^length_penalty). */
  length_penalty: num().nullish(),
  top_k: int().nullish(),
  min_p: num().nullish(),
  repetition_penalty: num().nullish(),
  stop_token_ids: tokenIds.nullish(),
  include_stop_str_in_output: z.boolean().nullish(),
  ignore_eos: z.boolean().nullish(),
  min_tokens: int().nullish(),
  skip_special_tokens: z.boolean().nullish(),
  spaces_between_special_tokens: z.boolean().nullish(),
  truncate_prompt_tokens: int().nullish(),
  /** Which end truncate_prompt_tokens cuts: 'left' keeps the last tokens (vLLM's default), 'right' the first. */
  truncation_side: z.enum(['left', 'right']).nullish(),
  allowed_token_ids: tokenIds.nullish(),
  prompt_logprobs: int().nullish(),
  add_special_tokens: z.boolean().nullish(),
  response_format: z
    .looseObject({
      type: z.string(),
      json_schema: z.looseObject({ name: z.string().nullish(), schema: z.unknown(), strict: z.boolean().nullish() }).nullish(),
    })
    .nullish(),
  // Structured outputs: vLLM's field, and its older guided_* names.
  structured_outputs: z.record(z.string(), z.unknown()).nullish(),
  guided_json: z.union([z.string(), z.record(z.string(), z.unknown())]).nullish(),
  guided_regex: z.string().nullish(),
  guided_choice: z.array(z.string()).nullish(),
  guided_grammar: z.string().nullish(),
  guided_decoding_backend: z.string().nullish(),
  guided_whitespace_pattern: z.string().nullish(),
  structural_tag: z.union([z.string(), z.record(z.string(), z.unknown())]).nullish(),
  priority: int().nullish(),
  request_id: z.string().max(256).nullish(),
  cache_salt: z.string().nullish(),
  return_token_ids: z.boolean().nullish(),
  /** Logprob tokens as 'token_id:N' (also server-wide with --return-tokens-as-token-ids). */
  return_tokens_as_token_ids: z.boolean().nullish(),
};

export const CompletionRequestSchema = z.object({
  ...samplingFields,
  prompt: z.union([z.string(), z.array(z.string()), tokenIds, z.array(tokenIds)]).nullish(),
  echo: z.boolean().nullish(),
  logprobs: int().nullish(),
  // NOTE: absent means 16 (OpenAI's and vLLM's default); an explicit null means "up to the context length".
  max_tokens: int().nullish(),
  suffix: z.string().nullish(),
});
export type CompletionRequest = z.infer<typeof CompletionRequestSchema>;

const ContentPartSchema = z.looseObject({ type: z.string() });

export const ChatMessageSchema = z.looseObject({
  role: z.string(),
  content: z.union([z.string(), z.array(ContentPartSchema)]).nullish(),
  name: z.string().nullish(),
});
export type ChatMessageParam = z.infer<typeof ChatMessageSchema>;

const chatTemplateFields = {
  add_generation_prompt: z.boolean().nullish(),
  continue_final_message: z.boolean().nullish(),
  chat_template: z.string().nullish(),
  chat_template_kwargs: z.record(z.string(), z.unknown()).nullish(),
  documents: z.array(z.record(z.string(), z.unknown())).nullish(),
  tools: z.array(z.looseObject({ type: z.string().optional() })).nullish(),
};

export const ChatCompletionRequestSchema = z.object({
  ...samplingFields,
  ...chatTemplateFields,
  messages: z.array(ChatMessageSchema),
  logprobs: z.boolean().nullish(),
  top_logprobs: int().nullish(),
  max_tokens: int().nullish(),
  max_completion_tokens: int().nullish(),
  tool_choice: z.union([z.string(), z.looseObject({})]).nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  echo: z.boolean().nullish(),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequestSchema>;

export const TokenizeCompletionRequestSchema = z.object({
  model: z.string().nullish(),
  prompt: z.string(),
  add_special_tokens: z.boolean().nullish(),
  return_token_strs: z.boolean().nullish(),
});

export const TokenizeChatRequestSchema = z.object({
  model: z.string().nullish(),
  messages: z.array(ChatMessageSchema),
  add_special_tokens: z.boolean().nullish(),
  return_token_strs: z.boolean().nullish(),
  ...chatTemplateFields,
});
export type TokenizeCompletionRequest = z.infer<typeof TokenizeCompletionRequestSchema>;
export type TokenizeChatRequest = z.infer<typeof TokenizeChatRequestSchema>;

export const DetokenizeRequestSchema = z.object({
  model: z.string().nullish(),
  tokens: tokenIds,
});
export type DetokenizeRequest = z.infer<typeof DetokenizeRequestSchema>;

// ---- responses (plain shapes; built by the serving_* handlers) ----

export interface ErrorInfo {
  message: string;
  type: string;
  param: string | null;
  code: number;
}

export interface UsageInfo {
  prompt_tokens: number;
  total_tokens: number;
  completion_tokens: number;
  prompt_tokens_details?: { cached_tokens: number } | null;
}

export interface CompletionLogProbs {
  text_offset: number[];
  token_logprobs: (number | null)[];
  tokens: string[];
  top_logprobs: (Record<string, number> | null)[];
}

export interface ChatLogProb {
  token: string;
  logprob: number;
  bytes: number[] | null;
}

export interface ChatLogProbsContent extends ChatLogProb {
  top_logprobs: ChatLogProb[];
}

export interface ChatLogProbs {
  content: ChatLogProbsContent[] | null;
}

export interface ModelCard {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  root: string | null;
  parent: string | null;
  max_model_len: number | null;
  /** vllm-ts's own field: what a request gets for the sampling fields it leaves out. */
  default_sampling_params: DefaultSamplingParams;
  permission: Record<string, unknown>[];
}

/** The sampling defaults of a model card (the API's names). */
export interface DefaultSamplingParams {
  temperature: number;
  top_p: number;
  top_k: number;
  min_p: number;
  presence_penalty: number;
  frequency_penalty: number;
  repetition_penalty: number;
  /** null: up to the context length. */
  max_tokens: number | null;
}

export const EmbeddingRequestSchema = z.object({
  model: z.string().nullish(),
  input: z.union([z.string(), z.array(z.string()), tokenIds, z.array(tokenIds)]),
  encoding_format: z.enum(['float', 'base64']).nullish(),
  dimensions: int().nullish(),
  user: z.string().nullish(),
  // vLLM's extras
  truncate_prompt_tokens: int().nullish(),
  truncation_side: z.enum(['left', 'right']).nullish(),
  add_special_tokens: z.boolean().nullish(),
  normalize: z.boolean().nullish(),
  priority: int().nullish(),
});
export type EmbeddingRequest = z.infer<typeof EmbeddingRequestSchema>;
