// GET /openapi.json: an OpenAPI 3.1 document of the server's routes, its request
// bodies emitted by zod 4 (z.toJSONSchema) from the very schemas that validate the
// requests, so that the document cannot drift from what the server accepts.
import { z, type ZodType } from 'zod';
import {
  ChatCompletionRequestSchema,
  CompletionRequestSchema,
  DetokenizeRequestSchema,
  EmbeddingRequestSchema,
  TokenizeChatRequestSchema,
  TokenizeCompletionRequestSchema,
} from './protocol.js';

/** Request body schemas by name (components.schemas). */
const REQUEST_SCHEMAS: Record<string, ZodType> = {
  CompletionRequest: CompletionRequestSchema,
  ChatCompletionRequest: ChatCompletionRequestSchema,
  EmbeddingRequest: EmbeddingRequestSchema,
  TokenizeCompletionRequest: TokenizeCompletionRequestSchema,
  TokenizeChatRequest: TokenizeChatRequestSchema,
  DetokenizeRequest: DetokenizeRequestSchema,
};

interface RouteDoc {
  summary: string;
  /** Names in REQUEST_SCHEMAS; several: any one of them (oneOf). */
  body?: string[];
  /** The answer's media type when it is not JSON. */
  produces?: string;
  /** A {name} segment of the path. */
  pathParam?: string;
}

/** What each route does, by path and method; a route missing here is still listed, with a generic entry. */
const ROUTE_DOCS: Record<string, Record<string, RouteDoc>> = {
  '/health': { GET: { summary: 'Health check: 200 while the engine runs, 503 otherwise', produces: 'none' } },
  '/ping': { GET: { summary: 'Health check (SageMaker)', produces: 'none' }, POST: { summary: 'Health check (SageMaker)', produces: 'none' } },
  '/version': { GET: { summary: 'The server version' } },
  '/load': { GET: { summary: 'Requests being answered now (counted with --enable-server-load-tracking)' } },
  '/metrics': { GET: { summary: 'Prometheus metrics', produces: 'text/plain' } },
  '/tokenizer_info': { GET: { summary: "The tokenizer's configuration (with --enable-tokenizer-info-endpoint)" } },
  '/v1/models': { GET: { summary: 'The served models' } },
  '/v1/models/{model}': { GET: { summary: 'One served model by its id (404 for another)', pathParam: 'model' } },
  '/v1/completions': { POST: { summary: 'Text completion (streamed as server-sent events with stream=true)', body: ['CompletionRequest'] } },
  '/v1/chat/completions': { POST: { summary: 'Chat completion (streamed as server-sent events with stream=true)', body: ['ChatCompletionRequest'] } },
  '/v1/embeddings': { POST: { summary: 'Embeddings of texts or token ids', body: ['EmbeddingRequest'] } },
  '/tokenize': { POST: { summary: 'Tokenize a prompt or a conversation', body: ['TokenizeCompletionRequest', 'TokenizeChatRequest'] } },
  '/detokenize': { POST: { summary: 'Token ids back to text', body: ['DetokenizeRequest'] } },
  '/invocations': {
    POST: { summary: 'SageMaker: a chat, completion or embedding request, told apart by its fields', body: ['ChatCompletionRequest', 'CompletionRequest', 'EmbeddingRequest'] },
  },
  '/engine': { GET: { summary: 'The engine view: the scheduler and the KV cache, live (a web page)', produces: 'text/html' } },
  '/engine/engine.js': { GET: { summary: "The engine view's script", produces: 'text/javascript' } },
  '/engine/engine.css': { GET: { summary: "The engine view's styles", produces: 'text/css' } },
  '/engine/events': { GET: { summary: 'The engine view as server-sent events: a config event, then sampled steps (with --enable-engine-view)', produces: 'text/event-stream' } },
  '/openapi.json': { GET: { summary: 'This document' } },
  '/docs': { GET: { summary: 'This document, rendered', produces: 'text/html' } },
};

function jsonSchema(schema: ZodType): Record<string, unknown> {
  // NOTE: 'input' describes what a client may send (defaults optional); a type JSON
  // Schema cannot express becomes {} rather than an exception.
  const out = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  delete out.$schema;
  return out;
}

const ERROR_SCHEMA = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { message: { type: 'string' }, type: { type: 'string' }, param: { type: ['string', 'null'] }, code: { type: 'integer' } },
      required: ['message', 'type', 'param', 'code'],
    },
  },
  required: ['error'],
};

function operation(path: string, method: string, doc: RouteDoc | undefined, secured: boolean): Record<string, unknown> {
  const op: Record<string, unknown> = {
    summary: doc?.summary ?? `${method} ${path}`,
    operationId: `${method.toLowerCase()}_${path.replace(/[^a-zA-Z0-9]+/g, '_').replace(/^_|_$/g, '') || 'root'}`,
  };
  if (doc?.pathParam) op.parameters = [{ name: doc.pathParam, in: 'path', required: true, schema: { type: 'string' } }];
  if (doc?.body) {
    const refs = doc.body.map((name) => ({ $ref: `#/components/schemas/${name}` }));
    op.requestBody = { required: true, content: { 'application/json': { schema: refs.length === 1 ? refs[0] : { oneOf: refs } } } };
  }
  const produces = doc?.produces ?? 'application/json';
  const ok = produces === 'none' ? { description: 'OK' } : { description: 'OK', content: { [produces]: {} } };
  const responses: Record<string, unknown> = { '200': ok };
  if (doc?.body) responses['400'] = { description: 'Invalid request', content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorResponse' } } } };
  op.responses = responses;
  if (secured) op.security = [{ bearer: [] }];
  return op;
}

export interface OpenApiOptions {
  version: string;
  /** --root-path: the server's base URL behind a proxy. */
  rootPath: string;
  /** The server's routes: path -> methods. */
  routes: Record<string, string[]>;
  /** Paths that need the API key (when one is set). */
  secured: (path: string) => boolean;
}

export function openApiDocument(opts: OpenApiOptions): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [path, methods] of Object.entries(opts.routes)) {
    const item: Record<string, unknown> = {};
    for (const method of methods) {
      if (method === 'HEAD' || method === 'OPTIONS') continue;
      item[method.toLowerCase()] = operation(path, method, ROUTE_DOCS[path]?.[method], opts.secured(path));
    }
    paths[path] = item;
  }
  const schemas: Record<string, unknown> = { ErrorResponse: ERROR_SCHEMA };
  for (const [name, schema] of Object.entries(REQUEST_SCHEMAS)) schemas[name] = jsonSchema(schema);
  return {
    openapi: '3.1.0',
    info: { title: 'vllm-ts OpenAI-compatible API', version: opts.version },
    servers: [{ url: opts.rootPath || '/' }],
    paths,
    components: { schemas, securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
  };
}

/** The JSON Schema of one request body, as /openapi.json gives it (for tests and tools). */
export function requestJsonSchema(name: keyof typeof REQUEST_SCHEMAS): Record<string, unknown> {
  return jsonSchema(REQUEST_SCHEMAS[name]);
}
