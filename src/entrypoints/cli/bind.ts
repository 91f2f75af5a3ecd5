// Binding the server's port before the model loads (minutes for a big one), with a
// clear sentence for the usual mistakes instead of Node's raw EADDRINUSE; until the
// engine is up, every request gets a 503 saying so (load balancers and /health
// probes see "not ready" rather than a refused connection).
import { createServer, type Server } from 'node:http';
import { isIP } from 'node:net';
import type { AddressInfo } from 'node:net';

export class BindError extends Error {
  override name = 'BindError';
}

/** --port as given: an integer in 0..65535 (0: any free port). */
export function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new BindError(`--port ${JSON.stringify(value)} is not a port number: use an integer from 0 to 65535 (0 picks a free one)`);
  }
  return n;
}

/** --host as given: an IP address or a host name (no scheme, port or path). */
export function checkHost(host: string | undefined): void {
  if (host === undefined) return;
  if (isIP(host) !== 0) return;
  if (!/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(host)) {
    throw new BindError(`--host ${JSON.stringify(host)} is not an IP address or host name (e.g. 127.0.0.1, 0.0.0.0, ::, localhost)`);
  }
}

function describe(err: NodeJS.ErrnoException, port: number, host: string | undefined): string {
  const where = `${host ?? '0.0.0.0'}:${port}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return `Port ${port} is already in use on ${host ?? 'all interfaces'} (another server is listening on ${where}): stop it, or pick another port with --port`;
    case 'EACCES':
      return `Permission denied binding ${where}${port < 1024 ? ': ports below 1024 need root' : ''}; pick another port with --port`;
    case 'EADDRNOTAVAIL':
      return `Cannot bind to --host ${host}: it is not an address of this machine (use 127.0.0.1, 0.0.0.0 or one of its interfaces)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return `--host ${host} does not resolve to an address of this machine (${err.code})`;
    default:
      return `Cannot listen on ${where}: ${err.message}`;
  }
}

function describeUds(err: NodeJS.ErrnoException, path: string): string {
  if (err.code === 'EADDRINUSE') return `--uds ${path} is in use (another server, or a stale socket file: remove it if no server runs)`;
  if (err.code === 'EACCES') return `Permission denied creating the socket --uds ${path}`;
  if (err.code === 'ENOENT') return `--uds ${path}: its folder does not exist`;
  return `Cannot listen on --uds ${path}: ${err.message}`;
}

export type BindTarget = { port: number; host?: string } | { uds: string };

/** An HTTP server listening on (port, host) or a Unix socket, answering 503 "loading" until the real handler replaces it. */
export function bindServer(target: BindTarget): Promise<{ server: Server; address: AddressInfo }> {
  const uds = 'uds' in target ? target.uds : undefined;
  const port = 'port' in target ? target.port : 0;
  const host = 'host' in target ? target.host : undefined;
  if (uds === undefined) checkHost(host);
  const server = createServer((req, res) => {
    const body = JSON.stringify({
      error: { message: 'The server is starting: the model is still loading; retry shortly', type: 'ServiceUnavailableError', param: null, code: 503 },
    });
    req.resume();
    res.writeHead(503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'retry-after': '5' });
    res.end(body);
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new BindError(uds !== undefined ? describeUds(e, uds) : describe(e, port, host))));
    const done = () => {
      server.removeAllListeners('error');
      const a = server.address();
      resolve({ server, address: typeof a === 'object' && a !== null ? a : { address: String(a), family: 'unix', port: 0 } });
    };
    if (uds !== undefined) server.listen(uds, done);
    else server.listen(port, host, done);
  });
}
