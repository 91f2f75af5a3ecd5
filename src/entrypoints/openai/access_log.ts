// One access-log line per HTTP request, as uvicorn writes it under vLLM:
//   127.0.0.1:51234 - "POST /v1/completions HTTP/1.1" 200 OK 12.3 ms
// written when the response has gone out, or when the client went away first
// ("... aborted by the client after 812.0 ms"). Refusals (4xx) are one line like any
// other: no body, no prompt.
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from '../../logger.js';

/** The most characters of a request target shown (a query string can be long). */
const MAX_TARGET = 256;

export function accessLog(req: IncomingMessage, res: ServerResponse, logger: Logger): void {
  const t0 = performance.now();
  const who = `${req.socket?.remoteAddress ?? '-'}:${req.socket?.remotePort ?? '-'}`;
  let done = false;
  const line = (tail: string) => {
    if (done) return;
    done = true;
    const target = req.url ?? '/';
    const shown = JSON.stringify(target.length > MAX_TARGET ? `${target.slice(0, MAX_TARGET)}...` : target).slice(1, -1);
    const method = (req.method ?? '-').slice(0, 16);
    logger.info(`${who} - "${method} ${shown} HTTP/${req.httpVersion}" ${tail} ${(performance.now() - t0).toFixed(1)} ms`);
  };
  res.on('finish', () => line(`${res.statusCode} ${STATUS_CODES[res.statusCode] ?? ''}`.trimEnd()));
  res.on('close', () => {
    if (!res.writableFinished) line(res.headersSent ? `${res.statusCode} aborted by the client after` : 'aborted by the client after');
  });
}
