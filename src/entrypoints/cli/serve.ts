// `vllm-ts serve MODEL`: the OpenAI-compatible server (vLLM's `vllm serve`), with
// vLLM's flags in kebab-case. SIGTERM / SIGINT drain: running requests finish (up
// to --shutdown-timeout), new ones get 503, then the process exits 0.
import { existsSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { AsyncLLM } from '../../engine/async_llm.js';
import { initLogger } from '../../logger.js';
import { LoggingStatLogger } from '../../metrics/logging.js';
import { validateEngineArgs } from '../../config/validate_engine_args.js';
import { ApiServer, VERSION } from '../openai/api_server.js';
import { DEFAULT_MAX_LOG_LEN } from '../openai/request_log.js';
import { bindServer, parsePort } from './bind.js';
import { addEngineFlags, engineArgsFromFlags, parseIntFlag } from './engine_flags.js';
import { addFrontendFlags, frontendOptionsFromFlags } from './serve_flags.js';

const logger = initLogger('api_server');

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** --allowed-origins as vLLM takes it (a JSON list), or comma-separated, or repeated. */
function parseOrigins(value: string, previous: string[] = []): string[] {
  const v = value.trim();
  if (v.startsWith('[')) {
    const list = JSON.parse(v) as unknown;
    if (!Array.isArray(list) || !list.every((o) => typeof o === 'string')) {
      throw new Error(`--allowed-origins must be a JSON list of strings, got ${value}`);
    }
    return [...previous, ...list];
  }
  return [...previous, ...v.split(',').map((o) => o.trim()).filter(Boolean)];
}

/** --chat-template: a file path, or the template text itself (as vLLM accepts both). */
function loadChatTemplate(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (existsSync(value)) return readFileSync(value, 'utf8');
  if (!/[{}]/.test(value)) throw new Error(`--chat-template ${value}: no such file, and not a Jinja template either`);
  return value;
}

/** A non-negative integer flag (its name in the message). */
function nonNegative(flag: string) {
  return (v: string) => {
    const n = parseIntFlag(v);
    if (n < 0) throw new Error(`${flag} must be 0 or more, got ${v}`);
    return n;
  };
}

function positive(flag: string) {
  return (v: string) => {
    const n = parseIntFlag(v);
    if (n < 1) throw new Error(`${flag} must be a positive integer, got ${v}`);
    return n;
  };
}

/** The curl line printed at startup; with an API key, a placeholder that fails loudly (401) if pasted unchanged. */
export function curlHint(base: string, model: string, withKey: boolean, uds?: string): string {
  const auth = withKey ? ` -H 'Authorization: Bearer YOUR_API_KEY'` : '';
  const body = JSON.stringify({ model, prompt: 'In the beginning', max_tokens: 32, temperature: 0 });
  const socket = uds !== undefined ? `--unix-socket ${shellQuote(uds)} ` : '';
  const line = `curl ${socket}${base}/v1/completions -H 'Content-Type: application/json'${auth} -d ${shellQuote(body)}`;
  return withKey ? `${line}\n  (replace YOUR_API_KEY with the key given to --api-key or VLLM_API_KEY)` : line;
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

export function registerServe(program: Command): Command {
  const cmd = program
    .command('serve')
    .description('start the OpenAI-compatible server')
    .argument('<model>', 'a HuggingFace model folder, or a Hub id (org/name)')
    .option('--host <host>', 'host name to bind (default: all interfaces)')
    .option('--port <port>', 'port (0: any free one)', parsePort, 8000)
    .option('--api-key <key>', 'require this key (repeatable; default: $VLLM_API_KEY) on /v1 routes', collect)
    .option('--served-model-name <names...>', 'model name(s) in the API (default: the model path)')
    .option('--chat-template <file-or-template>', 'chat template file or text, instead of the tokenizer one')
    .option('--trust-request-chat-template', 'accept chat_template in requests', false)
    .option('--allowed-origins <origins>', 'CORS origins, a JSON list or comma-separated ("*": any); default: no CORS', parseOrigins)
    .option('--max-log-len <n>', `characters / token ids of a prompt shown in request logs (default ${DEFAULT_MAX_LOG_LEN})`, nonNegative('--max-log-len'))
    .option('--enable-log-requests', "log each accepted request's prompt and parameters (off by default, as vLLM's)", false)
    .option('--disable-log-requests', 'deprecated (request logging is off unless --enable-log-requests)', false)
    .option('--disable-uvicorn-access-log', 'no access-log line per HTTP request', false)
    .option('--disable-log-stats', 'do not log throughput every 10 s', false)
    .option('--max-waiting-requests <n>', 'answer 503 beyond this many waiting requests', positive('--max-waiting-requests'))
    .option('--max-request-body-bytes <n>', 'largest request body (413 beyond)', positive('--max-request-body-bytes'), 16 * 1024 * 1024)
    .option('--shutdown-timeout <s>', 'seconds running requests get to finish on SIGTERM', nonNegative('--shutdown-timeout'), 30)
    .option('--enable-engine-view', 'serve GET /engine/events: sampled scheduler steps and the KV cache, for the /engine page (off by default)', false);
  addEngineFlags(addFrontendFlags(cmd)).action(async (model: string, o: Record<string, unknown>) => {
    const args = {
      ...engineArgsFromFlags(model, o),
      maxWaitingRequests: o.maxWaitingRequests as number | undefined,
      chatTemplate: loadChatTemplate(o.chatTemplate as string | undefined),
      enableEngineView: o.enableEngineView as boolean,
    };
    validateEngineArgs(args);
    const servedModelNames = (o.servedModelName as string[] | undefined) ?? [model];
    const apiKeys = (o.apiKey as string[] | undefined) ?? (process.env.VLLM_API_KEY ? [process.env.VLLM_API_KEY] : []);
    if (o.disableLogRequests) logger.warn('--disable-log-requests is deprecated: request logging is off unless --enable-log-requests is given');
    const host = o.host as string | undefined;
    const uds = o.uds as string | undefined;
    // NOTE: the port is bound before the model loads, so that a busy or invalid one
    // fails in a second, not after minutes of loading; meanwhile requests get 503.
    const { server: http, address: addr } = await bindServer(uds !== undefined ? { uds } : { port: o.port as number, host });
    const where = uds !== undefined ? `unix socket ${uds}` : `${host ?? '0.0.0.0'}:${addr.port}`;
    logger.info(`vllm-ts ${VERSION} serving ${model} as ${servedModelNames.join(', ')}; listening on ${where}, loading the model`);
    const exitWhileLoading = (signal: string) => {
      logger.info(`${signal} while loading: exiting`);
      process.exit(0);
    };
    process.once('SIGTERM', exitWhileLoading);
    process.once('SIGINT', exitWhileLoading);

    const engine = await AsyncLLM.create(args);
    process.off('SIGTERM', exitWhileLoading);
    process.off('SIGINT', exitWhileLoading);
    if (!o.disableLogStats) engine.addStatLogger(new LoggingStatLogger((line) => initLogger('metrics').info(line)));
    const server = new ApiServer(engine, {
      servedModelNames,
      apiKeys,
      allowedOrigins: (o.allowedOrigins as string[] | undefined) ?? [],
      maxBodyBytes: o.maxRequestBodyBytes as number,
      logRequests: (o.enableLogRequests as boolean) && !o.disableLogRequests,
      maxLogLen: (o.maxLogLen as number | undefined) ?? DEFAULT_MAX_LOG_LEN,
      accessLog: !o.disableUvicornAccessLog,
      trustRequestChatTemplate: o.trustRequestChatTemplate as boolean,
      httpServer: http,
      logger,
      ...frontendOptionsFromFlags(o),
    });
    server.tokenizerPool.prestart();
    // NOTE: before the startup lines below, so that a SIGTERM sent as soon as they
    // appear already drains instead of killing the process.
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        logger.warn(`${signal} again: exiting now`);
        process.exit(1);
      }
      stopping = true;
      const timeoutS = o.shutdownTimeout as number;
      logger.info(`${signal}: draining (running requests get up to ${timeoutS} s; new ones are refused)`);
      server.drain(timeoutS * 1000).then(
        () => {
          logger.info('Shutdown complete.');
          process.exit(0);
        },
        (e: Error) => {
          logger.error(`shutdown failed: ${e.message}`);
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    const shownHost = host === undefined || host === '0.0.0.0' || host === '::' ? 'localhost' : host;
    const base = uds !== undefined ? 'http://localhost' : `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${addr.port}`;
    logger.info(uds !== undefined ? `Starting vLLM API server on unix socket ${uds}` : `Starting vLLM API server on http://${host ?? '0.0.0.0'}:${addr.port}`);
    logger.info(`Available routes: ${server.routeSummary()}`);
    if (apiKeys.length > 0) logger.info(`API key required on /v1 routes (${apiKeys.length} key${apiKeys.length > 1 ? 's' : ''})`);
    logger.info(`Playground: ${base}/playground`);
    if (server.engineView !== null) logger.info(`Engine view: ${base}/engine`);
    logger.info(`Application startup complete. Try:\n  ${curlHint(base, servedModelNames[0], apiKeys.length > 0, uds)}`);
  });
  return cmd;
}
