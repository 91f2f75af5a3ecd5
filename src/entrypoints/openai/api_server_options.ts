// What the OpenAI-compatible server is built with (the `vllm-ts serve` flags that
// shape the HTTP layer; engine flags go to EngineArgs).
import type { Server } from 'node:http';
import type { Logger } from '../../logger.js';

export interface ApiServerOptions {
  /** Names the model answers to; default: the model path. */
  servedModelNames?: string[];
  /** Keys accepted as `Authorization: Bearer <key>` on /v1 routes; none: no check. */
  apiKeys?: string[];
  /** CORS origins ('*' for any); none: no CORS headers at all. */
  allowedOrigins?: string[];
  /** Largest request body accepted (413 beyond). Default 16 MiB. */
  maxBodyBytes?: number;
  /** Log each accepted request's prompt and parameters (--enable-log-requests). Default false. */
  logRequests?: boolean;
  /** Characters / token ids of a prompt in request logs (--max-log-len); null: all. Default 2048. */
  maxLogLen?: number | null;
  /** One access-log line per HTTP request (off: --disable-uvicorn-access-log). Default true. */
  accessLog?: boolean;
  /** Listen on this server (already bound, e.g. before the model loaded) instead of a new one. */
  httpServer?: Server;
  trustRequestChatTemplate?: boolean;
  logger?: Logger;
  /** --return-tokens-as-token-ids: logprob tokens as 'token_id:N'. */
  returnTokensAsTokenIds?: boolean;
  /** --enable-prompt-tokens-details: usage.prompt_tokens_details.cached_tokens. */
  enablePromptTokensDetails?: boolean;
  /** --enable-force-include-usage: usage at the end of every stream. */
  enableForceIncludeUsage?: boolean;
  /** --enable-auto-tool-choice: tool_choice "auto" (needs toolCallParser). */
  enableAutoToolChoice?: boolean;
  /** --tool-call-parser: hermes, llama3_json or mistral. */
  toolCallParser?: string | null;
  /** --root-path: the path prefix a proxy serves this server under. */
  rootPath?: string;
  /** --enable-request-id-headers: X-Request-Id on every response. */
  enableRequestIdHeaders?: boolean;
  /** --enable-tokenizer-info-endpoint: GET /tokenizer_info. */
  enableTokenizerInfoEndpoint?: boolean;
  /** --enable-server-load-tracking: GET /load counts the requests being answered. */
  enableServerLoadTracking?: boolean;
  /** --disable-fastapi-docs: no /openapi.json and /docs. */
  disableDocs?: boolean;
  /** Responses kept for previous_response_id and GET /v1/responses/{id}; default VLLM_RESPONSES_STORE_MAX_SIZE or 1000. */
  responsesStoreSize?: number;
}
