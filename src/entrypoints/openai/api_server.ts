// The OpenAI-compatible HTTP server on node:http (vLLM's api_server.py): routes,
// API-key check on /v1, CORS when --allowed-origins is given, body limits, client
// disconnects turned into aborts, and a graceful drain.
import { OpenAIServingEmbedding } from './serving_embedding.js';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AsyncLLM } from '../../engine/async_llm.js';
import { EngineOverloadedError, NotFoundError } from '../../errors.js';
import { initLogger, type Logger } from '../../logger.js';
import { PrometheusStatLogger } from '../../metrics/prometheus.js';
import { cacheConfigInfo } from '../../metrics/cache_config_info.js';
import { resolveSpeculativeConfig } from '../../config/speculative.js';
import { TokenizerPool } from '../../tokenizer/tokenizer_pool.js';
import { accessLog } from './access_log.js';
import { HttpError, sendError, sendJson } from './http.js';
import { PromptGuard } from './prompt_guard.js';
import { RequestBodies } from './request_body.js';
import { DEFAULT_MAX_LOG_LEN } from './request_log.js';
import {
  ChatCompletionRequestSchema,
  CompletionRequestSchema,
  DetokenizeRequestSchema,
  TokenizeChatRequestSchema,
  TokenizeCompletionRequestSchema,
  EmbeddingRequestSchema,
} from './protocol.js';
import { OpenAIServingChat } from './serving_chat.js';
import { OpenAIServingCompletion } from './serving_completion.js';
import { defaultSamplingParams, listModels } from './serving_models.js';
import { PLAYGROUND_PATHS, servePlayground } from './serving_playground.js';
import { engineViewRoutes } from './serving_engine_view.js';
import type { EngineViewHub } from './engine_view_hub.js';
import { OpenAIServingTokenization } from './serving_tokenization.js';
import { openApiDocument } from './openapi.js';
import { serveDocs } from './serving_docs.js';
import { STATIC_PREFIX, serveStatic } from './serving_static.js';
import { tokenizerInfo } from './serving_tokenizer_info.js';
import { ResponsesRequestSchema } from './protocol_responses.js';
import { ResponsesStore, storeSizeFromEnv } from './responses_store.js';
import { OpenAIServingResponses } from './serving_responses.js';
import { CountTokensRequestSchema, MessagesRequestSchema } from '../anthropic/protocol.js';
import { AnthropicServingMessages, sendAnthropicError } from '../anthropic/serving_messages.js';
import type { ApiServerOptions } from './api_server_options.js';
import { ApiKeys, applyCors, TurnQueue } from './server_access.js';

export type { ApiServerOptions } from './api_server_options.js';
import {
  headerRequestId,
  invocationKind,
  LOAD_TRACKED_PATHS,
  normalizeRootPath,
  ServerLoad,
  setRequestIdHeader,
  stripRootPath,
} from './server_surface.js';

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  /** The request's path (no query). */
  path: string;
  /** Aborted when the client goes away before the response is complete. */
  signal: AbortSignal;
}

type Handler = (ctx: Ctx) => Promise<void> | void;

export const VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

const MODEL_PREFIX = '/v1/models/';
const MODEL_ROUTE = '/v1/models/{model}';

const staticHandler: Handler = (ctx) => {
  if (!serveStatic(ctx)) throw new HttpError(404, 'NotFoundError', `No file ${ctx.path}`);
};
const STATIC_ROUTE = { GET: staticHandler, HEAD: staticHandler };

export class ApiServer {
  readonly server: Server;
  readonly metrics: PrometheusStatLogger;
  readonly servedModelNames: string[];
  private readonly logger: Logger;
  private readonly apiKeys: ApiKeys;
  private readonly allowedOrigins: string[];
  /** Reads and validates request bodies (size limit, off-loop parsing, admission turns). */
  private readonly bodies: RequestBodies;
  private readonly accessLog: boolean;
  /** Tokenizes long prompts and parses large bodies off the event loop. */
  readonly tokenizerPool: TokenizerPool;
  private readonly guard: PromptGuard;
  private readonly routes: Record<string, Partial<Record<string, Handler>>>;
  private draining = false;
  /** Requests past the drain check whose handler has not returned yet. */
  private inFlight = 0;
  private readonly turns = new TurnQueue();
  private readonly rootPath: string;
  private readonly requestIdHeaders: boolean;
  readonly load: ServerLoad;
  readonly responses: OpenAIServingResponses;
  /** The engine view's event fan-out (--enable-engine-view), else null. */
  readonly engineView: EngineViewHub | null;

  constructor(
    readonly engine: AsyncLLM,
    opts: ApiServerOptions = {},
  ) {
    this.logger = opts.logger ?? initLogger('api_server');
    this.servedModelNames = opts.servedModelNames?.length ? opts.servedModelNames : [engine.args.servedModelName ?? engine.args.model];
    this.apiKeys = new ApiKeys(opts.apiKeys ?? []);
    this.allowedOrigins = opts.allowedOrigins ?? [];
    this.accessLog = opts.accessLog ?? true;
    this.tokenizerPool = new TokenizerPool(engine.tokenizer, engine.tokenizer.name);
    this.guard = new PromptGuard(engine.tokenizer, this.tokenizerPool, engine.modelConfig.maxModelLen);
    this.bodies = new RequestBodies(opts.maxBodyBytes ?? 16 * 1024 * 1024, this.guard, this.tokenizerPool, this.turns, this.logger);
    const numSpec = resolveSpeculativeConfig(engine.args.speculativeConfig)?.numSpeculativeTokens ?? 0;
    this.metrics = new PrometheusStatLogger(this.servedModelNames[0], engine.modelConfig.maxModelLen, numSpec);
    this.metrics.logCacheConfigInfo(cacheConfigInfo(engine.cacheConfig, engine.args));
    engine.addStatLogger(this.metrics);

    const servingOpts = {
      servedModelNames: this.servedModelNames,
      logRequests: opts.logRequests ?? false,
      maxLogLen: opts.maxLogLen === undefined ? DEFAULT_MAX_LOG_LEN : opts.maxLogLen,
      guard: this.guard,
      trustRequestChatTemplate: opts.trustRequestChatTemplate ?? false,
      logger: this.logger,
      returnTokensAsTokenIds: opts.returnTokensAsTokenIds ?? false,
      enablePromptTokensDetails: opts.enablePromptTokensDetails ?? false,
      enableForceIncludeUsage: opts.enableForceIncludeUsage ?? false,
      enableAutoToolChoice: opts.enableAutoToolChoice ?? false,
      toolCallParser: opts.toolCallParser ?? null,
    };
    this.rootPath = normalizeRootPath(opts.rootPath);
    this.requestIdHeaders = opts.enableRequestIdHeaders ?? false;
    this.load = new ServerLoad(opts.enableServerLoadTracking ?? false);
    const completion = new OpenAIServingCompletion(engine, servingOpts);
    const chat = new OpenAIServingChat(engine, servingOpts);
    const embedding = new OpenAIServingEmbedding(engine, servingOpts);
    const tokenization = new OpenAIServingTokenization(chat);
    this.responses = new OpenAIServingResponses(engine, servingOpts, chat, new ResponsesStore(opts.responsesStoreSize ?? storeSizeFromEnv()));
    const messages = new AnthropicServingMessages(engine, servingOpts, chat);

    const health: Handler = ({ res }) => {
      res.writeHead(engine.isHealthy() && !this.draining ? 200 : 503, { 'content-length': 0 });
      res.end();
    };
    this.routes = {
      '/health': { GET: health },
      '/ping': { GET: health, POST: health },
      '/version': { GET: ({ res }) => sendJson(res, 200, { version: VERSION }) },
      '/metrics': {
        GET: async ({ res }) => {
          const text = await this.metrics.metrics();
          res.writeHead(200, { 'content-type': this.metrics.contentType, 'content-length': Buffer.byteLength(text) });
          res.end(text);
        },
      },
      '/v1/models': {
        GET: ({ res }) => sendJson(res, 200, this.modelList()),
      },
      // The model id is the rest of the path (ids like org/name hold slashes); see dynamicRoute.
      [MODEL_ROUTE]: {
        GET: ({ res, path }) => {
          let id: string;
          try {
            id = decodeURIComponent(path.slice(MODEL_PREFIX.length));
          } catch {
            throw new HttpError(400, 'BadRequestError', 'Malformed model id in the request path');
          }
          sendJson(res, 200, this.retrieveModel(id));
        },
      },
      '/v1/completions': {
        POST: async (ctx) => completion.create(await this.bodies.parse(ctx, CompletionRequestSchema), ctx.res, ctx.signal, headerRequestId(ctx.req)),
      },
      '/v1/chat/completions': {
        POST: async (ctx) => chat.create(await this.bodies.parse(ctx, ChatCompletionRequestSchema), ctx.res, ctx.signal, headerRequestId(ctx.req)),
      },
      '/v1/responses': {
        POST: async (ctx) => this.responses.create(await this.bodies.parse(ctx, ResponsesRequestSchema), ctx.res, ctx.signal, headerRequestId(ctx.req)),
      },
      '/v1/messages': {
        POST: async (ctx) => messages.create(await this.bodies.parse(ctx, MessagesRequestSchema), ctx.res, ctx.signal, headerRequestId(ctx.req)),
      },
      '/v1/messages/count_tokens': {
        POST: async (ctx) => messages.countTokens(await this.bodies.parse(ctx, CountTokensRequestSchema), ctx.res),
      },
      '/v1/embeddings': {
        POST: async (ctx) => embedding.create(await this.bodies.parse(ctx, EmbeddingRequestSchema), ctx.res, ctx.signal, headerRequestId(ctx.req)),
      },
      // SageMaker's one route: the body's fields say which API it is for.
      '/invocations': {
        POST: async (ctx) => {
          const raw = await this.bodies.read(ctx);
          const kind = invocationKind(raw);
          await this.turns.next();
          const id = headerRequestId(ctx.req);
          if (kind === 'chat') return chat.create(this.bodies.validate(ctx, ChatCompletionRequestSchema, raw), ctx.res, ctx.signal, id);
          if (kind === 'completion') return completion.create(this.bodies.validate(ctx, CompletionRequestSchema, raw), ctx.res, ctx.signal, id);
          return embedding.create(this.bodies.validate(ctx, EmbeddingRequestSchema, raw), ctx.res, ctx.signal, id);
        },
      },
      '/load': { GET: ({ res }) => sendJson(res, 200, { server_load: this.load.value }) },
      '/tokenize': {
        POST: async (ctx) => {
          const raw = await this.bodies.read(ctx);
          const isChat = raw !== null && typeof raw === 'object' && 'messages' in raw;
          const req = isChat ? this.bodies.validate(ctx, TokenizeChatRequestSchema, raw) : this.bodies.validate(ctx, TokenizeCompletionRequestSchema, raw);
          sendJson(ctx.res, 200, await tokenization.tokenize(req));
        },
      },
      '/detokenize': {
        POST: async (ctx) => sendJson(ctx.res, 200, tokenization.detokenize(await this.bodies.parse(ctx, DetokenizeRequestSchema))),
      },
    };
    for (const path of PLAYGROUND_PATHS) this.routes[path] = { GET: servePlayground, HEAD: servePlayground };
    const engineView = engineViewRoutes(engine, this.servedModelNames[0]);
    Object.assign(this.routes, engineView.routes);
    this.engineView = engineView.hub;
    if (opts.enableTokenizerInfoEndpoint) {
      this.routes['/tokenizer_info'] = { GET: ({ res }) => sendJson(res, 200, tokenizerInfo(engine.tokenizer, engine.args.chatTemplate)) };
    }
    if (!opts.disableDocs) {
      this.routes['/docs'] = { GET: serveDocs, HEAD: serveDocs };
      // NOTE: built on first use, from the route table as it is then (every route is registered by now).
      let doc: string | null = null;
      this.routes['/openapi.json'] = {
        GET: ({ res }) => {
          doc ??= JSON.stringify(this.openApi());
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(doc) });
          res.end(doc);
        },
      };
    }
    if (process.env.VLLM_SERVER_DEV_MODE === '1') {
      this.routes['/reset_prefix_cache'] = {
        POST: async ({ res }) => sendJson(res, 200, { reset: await engine.resetPrefixCache() }),
      };
    }

    this.server = opts.httpServer ?? createServer();
    this.server.removeAllListeners('request');
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res));
    this.server.keepAliveTimeout = 5000;
  }

  private modelList() {
    const defaults = defaultSamplingParams(this.engine.defaultSamplingOverrides);
    return listModels(this.servedModelNames, this.engine.args.model, this.engine.modelConfig.maxModelLen, defaults);
  }

  /** GET /v1/models/{id}: the model card of one served name (ids may hold slashes), or 404. */
  private retrieveModel(id: string): unknown {
    const list = this.modelList();
    const card = list.data.find((m) => m.id === id);
    if (!card) throw new NotFoundError(`The model \`${id.length > 200 ? `${id.slice(0, 200)}...` : id}\` does not exist.`);
    return card;
  }

  /** GET /v1/responses/{id} and POST /v1/responses/{id}/cancel. */
  private responseRoute(path: string): Partial<Record<string, Handler>> | undefined {
    const m = /^\/v1\/responses\/([^/]+)(\/cancel)?$/.exec(path);
    if (m === null) return undefined;
    const id = decodeURIComponent(m[1]);
    if (m[2]) return { POST: ({ res }) => this.responses.cancel(id, res) };
    return { GET: ({ res }) => this.responses.retrieve(id, res) };
  }

  /** The routes by method, for the startup log: "GET /health /ping ...; POST /v1/completions ...". */
  routeSummary(): string {
    const byMethod = new Map<string, string[]>();
    for (const [path, r] of Object.entries(this.routes)) {
      for (const method of Object.keys(r ?? {})) if (method !== 'HEAD') byMethod.set(method, [...(byMethod.get(method) ?? []), path]);
    }
    return [...byMethod].map(([m, paths]) => `${m} ${paths.join(' ')}`).join('; ');
  }

  /** The OpenAPI document of this server's routes (GET /openapi.json). */
  openApi(): Record<string, unknown> {
    const routes = Object.fromEntries(Object.entries(this.routes).map(([path, r]) => [path, Object.keys(r ?? {})]));
    return openApiDocument({ version: VERSION, rootPath: this.rootPath, routes, secured: (p) => this.apiKeys.configured && this.apiKeys.needsKey(p) });
  }

  /** --uds: listens on a Unix domain socket instead of a TCP port. */
  listenUnix(socketPath: string): Promise<string> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(socketPath, () => {
        this.server.off('error', reject);
        resolve(socketPath);
      });
    });
  }

  listen(port: number, host?: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Routes with a parameter in the path. */
  private dynamicRoute(path: string): Partial<Record<string, Handler>> | undefined {
    if (path.startsWith(STATIC_PREFIX)) return STATIC_ROUTE;
    if (!path.startsWith(MODEL_PREFIX) || path.length === MODEL_PREFIX.length) return undefined;
    return this.routes[MODEL_ROUTE];
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.accessLog) accessLog(req, res, this.logger);
    const ac = new AbortController();
    let path = '';
    res.on('close', () => {
      if (!res.writableFinished) ac.abort(new DOMException('The client disconnected', 'AbortError'));
    });
    try {
      if (this.requestIdHeaders) setRequestIdHeader(req, res);
      if (applyCors(this.allowedOrigins, req, res)) return;
      let stripped: string;
      try {
        stripped = stripRootPath(new URL(req.url ?? '/', 'http://localhost').pathname, this.rootPath);
      } catch {
        throw new HttpError(400, 'BadRequestError', `Malformed request URL ${JSON.stringify(req.url)}`);
      }
      path = stripped;
      const route = this.routes[path] ?? this.dynamicRoute(path) ?? this.responseRoute(path);
      if (route === undefined) throw new HttpError(404, 'NotFoundError', `No route ${path}; see GET /v1/models, POST /v1/completions, POST /v1/chat/completions`);
      const handler = route[req.method ?? ''];
      if (handler === undefined) {
        res.setHeader('allow', Object.keys(route).join(', '));
        throw new HttpError(405, 'MethodNotAllowed', `Method ${req.method} is not allowed on ${path}; use ${Object.keys(route).join(' or ')}`);
      }
      if (this.apiKeys.needsKey(path) && !this.apiKeys.authorized(req)) {
        throw new HttpError(401, 'AuthenticationError', "Unauthorized: send the server's API key as 'Authorization: Bearer <key>'");
      }
      if (this.draining && req.method === 'POST' && path !== '/ping') {
        throw new EngineOverloadedError('The server is shutting down and accepts no new requests');
      }
      this.inFlight++;
      if (LOAD_TRACKED_PATHS.has(path)) this.load.track(res);
      try {
        await handler({ req, res, path, signal: ac.signal });
      } finally {
        this.inFlight--;
      }
    } catch (e) {
      if (ac.signal.aborted || res.destroyed) return; // the client is gone: nobody to answer
      const extra: Record<string, string> = (e as HttpError).status === 413 ? { connection: 'close' } : {};
      const info = path.startsWith('/v1/messages') ? sendAnthropicError(res, e, extra) : sendError(res, e, extra);
      if (info.code >= 500 && info.code !== 503) this.logger.error(`${req.method} ${req.url} failed: ${(e as Error).stack ?? String(e)}`);
    }
  }

  /**
   * Graceful stop: refuses new work (503, /health too), lets the requests in
   * flight finish and their answers go out for up to `timeoutMs`, then stops
   * listening, stops the engine and closes every connection. NOTE: the listener
   * stays open meanwhile, so that a new client (or a load balancer's health
   * check) gets a 503 with Retry-After rather than a refused connection.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    this.engine.stopAccepting();
    this.server.closeIdleConnections();
    const deadline = Date.now() + timeoutMs;
    while ((this.engine.numUnfinishedRequests > 0 || this.inFlight > 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const left = this.engine.numUnfinishedRequests;
    if (left > 0) this.logger.warn(`drain timed out after ${timeoutMs} ms; aborting ${left} requests`);
    this.engineView?.close();
    if (this.server.listening) this.server.close();
    this.tokenizerPool.close();
    await this.engine.shutdown();
    this.server.closeAllConnections();
  }

  /** Immediate stop (tests): closes connections and the engine. */
  async close(): Promise<void> {
    this.draining = true;
    this.engineView?.close();
    if (this.server.listening) this.server.close();
    this.server.closeAllConnections();
    this.tokenizerPool.close();
    await this.engine.shutdown();
  }
}

