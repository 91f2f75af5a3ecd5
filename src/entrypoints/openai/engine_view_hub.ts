// The engine view's fan-out (GET /engine/events): a stat logger that takes the
// EngineViewRecords riding in SchedulerStats, keeps the last few in a ring buffer
// (a new client sees recent steps at once) and writes each one, encoded once, to
// every connected client as a server-sent event. A client that does not keep up
// loses records instead of queueing them: a record is written only while that
// client's unsent bytes stay under a bound (each record is a whole snapshot, so a
// lost one is only a skipped frame). Nothing here ever waits on a client, so no
// client can hold up the engine or the other clients.
import type { ServerResponse } from 'node:http';
import type { EngineViewRecord } from '../../core/engine_view.js';
import type { SchedulerStats } from '../../core/types.js';
import type { IterationStats, StatLogger } from '../../metrics/stats.js';

/** What the page needs once, sent first on every connection (event `config`). */
export interface EngineViewConfig {
  model: string;
  /** vLLM's block_size. */
  blockSize: number;
  /** Usable KV-cache blocks (num_gpu_blocks less the null block). */
  numBlocks: number;
  maxNumSeqs: number;
  /** The token budget of a step (max_num_batched_tokens). */
  maxNumBatchedTokens: number;
  maxModelLen: number;
  enablePrefixCaching: boolean;
}

export interface EngineViewHubOptions {
  /** Records kept for clients that connect later. Default 64. */
  ringSize?: number;
  /** A client's unsent bytes beyond which records are dropped for it (one record always goes to an empty buffer). Default 64 KiB. */
  maxBufferedBytes?: number;
  /** A comment line keeps idle connections open through proxies. Default 15 s. */
  keepaliveMs?: number;
}

interface Client {
  res: ServerResponse;
  sent: number;
  dropped: number;
}

/** Per-client counts, for tests and the logs. */
export interface EngineViewClientStats {
  sent: number;
  dropped: number;
  /** Bytes written but not yet handed to the socket. */
  bufferedBytes: number;
}

export class EngineViewHub implements StatLogger {
  private readonly ring: string[] = [];
  private readonly clients = new Set<Client>();
  private readonly ringSize: number;
  private readonly maxBufferedBytes: number;
  private readonly keepaliveMs: number;
  private keepalive: NodeJS.Timeout | null = null;
  /** Records received from the engine core since startup. */
  numRecords = 0;
  lastRecord: EngineViewRecord | null = null;

  constructor(
    readonly config: EngineViewConfig,
    opts: EngineViewHubOptions = {},
  ) {
    this.ringSize = opts.ringSize ?? 64;
    this.maxBufferedBytes = opts.maxBufferedBytes ?? 64 * 1024;
    this.keepaliveMs = opts.keepaliveMs ?? 15_000;
  }

  /** StatLogger: called once per engine step; only the sampled steps carry a record. */
  record(schedulerStats: SchedulerStats | null, _iterationStats?: IterationStats): void {
    const r = schedulerStats?.engineView;
    if (r !== undefined) this.publish(r);
  }

  publish(r: EngineViewRecord): void {
    this.numRecords++;
    this.lastRecord = r;
    const text = `event: step\ndata: ${JSON.stringify(r)}\n\n`;
    this.ring.push(text);
    if (this.ring.length > this.ringSize) this.ring.shift();
    for (const c of this.clients) this.offer(c, text);
  }

  /** Writes unless the client is behind; never waits. */
  private offer(c: Client, text: string): void {
    const res = c.res;
    if (res.destroyed || res.writableEnded) return;
    const buffered = res.writableLength;
    if (buffered > 0 && buffered + text.length > this.maxBufferedBytes) {
      c.dropped++;
      return;
    }
    res.write(text);
    c.sent++;
  }

  /** Takes over a response as an event stream: the config, the recent records, then each new one. */
  attach(res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const client: Client = { res, sent: 0, dropped: 0 };
    res.write(`event: config\ndata: ${JSON.stringify(this.config)}\n\n`);
    for (const text of this.ring) this.offer(client, text);
    this.clients.add(client);
    res.on('close', () => {
      this.clients.delete(client);
      if (this.clients.size === 0) this.stopKeepalive();
    });
    this.startKeepalive();
  }

  clientStats(): EngineViewClientStats[] {
    return [...this.clients].map((c) => ({ sent: c.sent, dropped: c.dropped, bufferedBytes: c.res.writableLength }));
  }

  get numClients(): number {
    return this.clients.size;
  }

  /** Ends every stream (server shutdown). */
  close(): void {
    this.stopKeepalive();
    for (const c of this.clients) c.res.end();
    this.clients.clear();
  }

  private startKeepalive(): void {
    if (this.keepalive !== null) return;
    this.keepalive = setInterval(() => {
      for (const c of this.clients) if (c.res.writableLength === 0) c.res.write(': keepalive\n\n');
    }, this.keepaliveMs);
    this.keepalive.unref();
  }

  private stopKeepalive(): void {
    if (this.keepalive !== null) clearInterval(this.keepalive);
    this.keepalive = null;
  }
}
