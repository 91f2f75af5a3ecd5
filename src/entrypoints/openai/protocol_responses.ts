// Request schema (zod 4) and response shapes of OpenAI's Responses API
// (POST /v1/responses), as the `openai` v6 SDK types them, with vLLM's extra
// sampling fields. Unknown fields are dropped, as vLLM ignores them.
import { z } from 'zod';

const int = () => z.number().int();
const num = () => z.number();

/** A content part of an input message: input_text / output_text (text), others refused later by name. */
const InputContentPartSchema = z.looseObject({ type: z.string(), text: z.string().nullish() });

const InputMessageSchema = z.looseObject({
  type: z.literal('message').optional(),
  role: z.enum(['user', 'assistant', 'system', 'developer']),
  content: z.union([z.string(), z.array(InputContentPartSchema)]),
});

const FunctionCallItemSchema = z.looseObject({
  type: z.literal('function_call'),
  call_id: z.string(),
  name: z.string(),
  arguments: z.string(),
  id: z.string().nullish(),
});

const FunctionCallOutputItemSchema = z.looseObject({
  type: z.literal('function_call_output'),
  call_id: z.string(),
  output: z.union([z.string(), z.array(InputContentPartSchema)]),
});

const ReasoningItemSchema = z.looseObject({
  type: z.literal('reasoning'),
  summary: z.array(z.looseObject({ text: z.string() })).nullish(),
  content: z.array(z.looseObject({ text: z.string() })).nullish(),
});

/** Any other item type (web_search_call, item_reference, ...): kept so that the server names it in a 400. */
const OtherItemSchema = z.looseObject({ type: z.string() });

export const ResponseInputItemSchema = z.union([
  InputMessageSchema,
  FunctionCallItemSchema,
  FunctionCallOutputItemSchema,
  ReasoningItemSchema,
  OtherItemSchema,
]);
export type ResponseInputItem = z.infer<typeof ResponseInputItemSchema>;

export const ResponsesToolSchema = z.looseObject({
  type: z.string(),
  name: z.string().nullish(),
  description: z.string().nullish(),
  parameters: z.record(z.string(), z.unknown()).nullish(),
  strict: z.boolean().nullish(),
});
export type ResponsesTool = z.infer<typeof ResponsesToolSchema>;

const TextFormatSchema = z.looseObject({
  type: z.enum(['text', 'json_schema', 'json_object']),
  name: z.string().nullish(),
  schema: z.record(z.string(), z.unknown()).nullish(),
  strict: z.boolean().nullish(),
  description: z.string().nullish(),
});

export const ResponsesRequestSchema = z.object({
  model: z.string().nullish(),
  input: z.union([z.string(), z.array(ResponseInputItemSchema)]),
  instructions: z.string().nullish(),
  max_output_tokens: int().nullish(),
  temperature: num().nullish(),
  top_p: num().nullish(),
  tools: z.array(ResponsesToolSchema).nullish(),
  tool_choice: z.union([z.enum(['none', 'auto', 'required']), z.looseObject({ type: z.string(), name: z.string().nullish() })]).nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  text: z.looseObject({ format: TextFormatSchema.nullish() }).nullish(),
  reasoning: z.looseObject({ effort: z.string().nullish(), summary: z.string().nullish() }).nullish(),
  stream: z.boolean().nullish(),
  store: z.boolean().nullish(),
  background: z.boolean().nullish(),
  previous_response_id: z.string().nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  user: z.string().nullish(),
  truncation: z.enum(['auto', 'disabled']).nullish(),
  top_logprobs: int().nullish(),
  include: z.array(z.string()).nullish(),
  service_tier: z.string().nullish(),
  // vLLM's extras
  top_k: int().nullish(),
  min_p: num().nullish(),
  repetition_penalty: num().nullish(),
  ignore_eos: z.boolean().nullish(),
  seed: int().nullish(),
  request_id: z.string().max(256).nullish(),
  priority: int().nullish(),
  cache_salt: z.string().nullish(),
});
export type ResponsesRequest = z.infer<typeof ResponsesRequestSchema>;

// ---- response shapes (as the openai SDK's Response and its output items) ----

export interface OutputText {
  type: 'output_text';
  text: string;
  annotations: unknown[];
  logprobs: unknown[];
}

export interface OutputMessage {
  type: 'message';
  id: string;
  role: 'assistant';
  status: 'in_progress' | 'completed' | 'incomplete';
  content: OutputText[];
}

export interface FunctionCallOutput {
  type: 'function_call';
  id: string;
  call_id: string;
  name: string;
  arguments: string;
  status: 'in_progress' | 'completed' | 'incomplete';
}

export interface ReasoningOutput {
  type: 'reasoning';
  id: string;
  summary: { type: 'summary_text'; text: string }[];
  content: { type: 'reasoning_text'; text: string }[];
  status: 'in_progress' | 'completed' | 'incomplete';
}

export type OutputItem = OutputMessage | FunctionCallOutput | ReasoningOutput;

export type ResponseStatus = 'queued' | 'in_progress' | 'completed' | 'incomplete' | 'cancelled' | 'failed';

export interface ResponseUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export interface ResponseObject {
  id: string;
  object: 'response';
  created_at: number;
  status: ResponseStatus;
  background: boolean;
  error: { code: string; message: string } | null;
  incomplete_details: { reason: 'max_output_tokens' | 'content_filter' } | null;
  instructions: string | null;
  max_output_tokens: number | null;
  metadata: Record<string, string> | null;
  model: string;
  output: OutputItem[];
  parallel_tool_calls: boolean;
  previous_response_id: string | null;
  reasoning: { effort: string | null; summary: string | null } | null;
  store: boolean;
  temperature: number | null;
  text: { format: Record<string, unknown> };
  tool_choice: unknown;
  tools: unknown[];
  top_p: number | null;
  truncation: 'auto' | 'disabled';
  usage: ResponseUsage | null;
  user: string | null;
}
