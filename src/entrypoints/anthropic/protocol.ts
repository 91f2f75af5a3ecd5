// Request schemas (zod 4) and response shapes of Anthropic's Messages API
// (POST /v1/messages, POST /v1/messages/count_tokens), as the
// `@anthropic-ai/sdk` types them. Unknown fields are dropped.
import { z } from 'zod';

const int = () => z.number().int();
const num = () => z.number();

const TextBlockSchema = z.looseObject({ type: z.literal('text'), text: z.string() });

/** A content block of a message: text, tool_use, tool_result; any other type is named in a 400 later. */
const ContentBlockSchema = z.looseObject({
  type: z.string(),
  text: z.string().nullish(),
  id: z.string().nullish(),
  name: z.string().nullish(),
  input: z.unknown().optional(),
  tool_use_id: z.string().nullish(),
  content: z.union([z.string(), z.array(z.looseObject({ type: z.string(), text: z.string().nullish() }))]).nullish(),
  is_error: z.boolean().nullish(),
});
export type ContentBlockParam = z.infer<typeof ContentBlockSchema>;

const MessageParamSchema = z.object({
  role: z.enum(['user', 'assistant']),
  content: z.union([z.string(), z.array(ContentBlockSchema)]),
});
export type MessageParam = z.infer<typeof MessageParamSchema>;

export const AnthropicToolSchema = z.looseObject({
  name: z.string(),
  description: z.string().nullish(),
  input_schema: z.record(z.string(), z.unknown()).nullish(),
  type: z.string().nullish(),
});

const ToolChoiceSchema = z.looseObject({
  type: z.enum(['auto', 'any', 'tool', 'none']),
  name: z.string().nullish(),
  disable_parallel_tool_use: z.boolean().nullish(),
});

const promptFields = {
  model: z.string(),
  messages: z.array(MessageParamSchema),
  system: z.union([z.string(), z.array(TextBlockSchema)]).nullish(),
  tools: z.array(AnthropicToolSchema).nullish(),
  tool_choice: ToolChoiceSchema.nullish(),
  thinking: z.looseObject({ type: z.string() }).nullish(),
};

export const MessagesRequestSchema = z.object({
  ...promptFields,
  max_tokens: int(),
  stop_sequences: z.array(z.string()).nullish(),
  temperature: num().nullish(),
  top_p: num().nullish(),
  top_k: int().nullish(),
  stream: z.boolean().nullish(),
  metadata: z.looseObject({ user_id: z.string().nullish() }).nullish(),
  service_tier: z.string().nullish(),
});
export type MessagesRequest = z.infer<typeof MessagesRequestSchema>;

export const CountTokensRequestSchema = z.object(promptFields);
export type CountTokensRequest = z.infer<typeof CountTokensRequestSchema>;

// ---- response shapes ----

export type StopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use';

export interface AnthropicUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number | null;
  cache_read_input_tokens: number | null;
}

export type ContentBlock =
  | { type: 'text'; text: string; citations: null }
  | { type: 'thinking'; thinking: string; signature: string }
  | { type: 'tool_use'; id: string; name: string; input: unknown; caller: { type: 'direct' } };

export interface AnthropicMessage {
  id: string;
  type: 'message';
  role: 'assistant';
  model: string;
  content: ContentBlock[];
  stop_reason: StopReason | null;
  stop_sequence: string | null;
  usage: AnthropicUsage;
}

/** Anthropic's error types by HTTP status. */
export function anthropicErrorType(status: number): string {
  switch (status) {
    case 400:
    case 405:
    case 415:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 503:
    case 529:
      return 'overloaded_error';
    default:
      return 'api_error';
  }
}

export interface AnthropicErrorBody {
  type: 'error';
  error: { type: string; message: string };
}
