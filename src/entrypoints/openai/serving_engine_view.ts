// The engine view's routes: the page (GET /engine, static/engine.html with its own
// engine.js and engine.css, served from memory under a Content-Security-Policy that
// allows only this server's own files) and, with --enable-engine-view only, the
// event stream GET /engine/events (engine_view_hub.ts), which needs the API key as
// /v1 does. Without the flag the stream's route does not exist (404) and the engine
// core builds no records at all; the page then says how to turn the view on.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AsyncLLM } from '../../engine/async_llm.js';
import { EngineViewHub } from './engine_view_hub.js';

export const ENGINE_VIEW_PAGE = '/engine';
export const ENGINE_VIEW_EVENTS = '/engine/events';

/** The page's files: its path, the file under static/, the media type. */
const FILES: [string, string, string][] = [
  [ENGINE_VIEW_PAGE, 'engine.html', 'text/html; charset=utf-8'],
  ['/engine/engine.js', 'engine.js', 'text/javascript; charset=utf-8'],
  ['/engine/engine.css', 'engine.css', 'text/css; charset=utf-8'],
];

// NOTE: nothing inline, nothing from elsewhere: scripts and styles are this server's files.
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

type Handler = (ctx: { req: IncomingMessage; res: ServerResponse }) => void;
type Routes = Record<string, Partial<Record<string, Handler>>>;

/** One static file, read on first use and kept (three levels up from here is the package root, where static/ ships). */
function staticFile(name: string, contentType: string): Handler {
  let cached: { body: Buffer; headers: Record<string, string | number> } | null = null;
  return ({ req, res }) => {
    if (cached === null) {
      const url = new URL(`../../../static/${name}`, import.meta.url);
      let body: Buffer;
      try {
        body = readFileSync(url);
      } catch (e) {
        throw new Error(`The engine view's ${url.pathname} could not be read (${(e as Error).message}); reinstall the package (its 'static' folder is missing)`);
      }
      const headers: Record<string, string | number> = {
        'content-type': contentType,
        'content-length': body.length,
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
        'cache-control': 'no-cache',
      };
      if (contentType.startsWith('text/html')) headers['content-security-policy'] = CSP;
      cached = { body, headers };
    }
    res.writeHead(200, cached.headers);
    res.end(req.method === 'HEAD' ? undefined : cached.body);
  };
}

export interface EngineViewRoutes {
  routes: Routes;
  /** The event fan-out, registered as a stat logger of the engine, when the engine was started with enableEngineView; else null. */
  hub: EngineViewHub | null;
}

/** The engine view's routes: the page's files always, the event stream only with enableEngineView. */
export function engineViewRoutes(engine: AsyncLLM, model: string): EngineViewRoutes {
  const routes: Routes = {};
  for (const [path, name, type] of FILES) {
    const h = staticFile(name, type);
    routes[path] = { GET: h, HEAD: h };
  }
  if (!engine.args.enableEngineView) return { routes, hub: null };
  const hub = new EngineViewHub({
    model,
    blockSize: engine.cacheConfig.blockSize,
    numBlocks: engine.cacheConfig.numBlocks - 1,
    maxNumSeqs: engine.schedulerConfig.maxNumSeqs,
    maxNumBatchedTokens: engine.schedulerConfig.maxNumBatchedTokens,
    maxModelLen: engine.modelConfig.maxModelLen,
    enablePrefixCaching: engine.cacheConfig.enablePrefixCaching,
  });
  engine.addStatLogger(hub);
  routes[ENGINE_VIEW_EVENTS] = { GET: ({ res }) => hub.attach(res) };
  return { routes, hub };
}
