// Server-sent events with an `event:` line per event, as OpenAI's Responses
// stream and Anthropic's Messages stream send them (`event: <type>` then
// `data: <json>`), waiting for the client to drain its buffer.
import type { ServerResponse } from 'node:http';
import { once } from 'node:events';

export class NamedSseWriter {
  constructor(private readonly res: ServerResponse) {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.flushHeaders();
  }

  get closed(): boolean {
    return this.res.destroyed || this.res.writableEnded;
  }

  /** One event; dropped when the client is gone. */
  async send(event: string, data: unknown): Promise<void> {
    if (this.closed) return;
    if (!this.res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)) {
      await Promise.race([once(this.res, 'drain'), once(this.res, 'close')]);
    }
  }

  end(): void {
    if (!this.closed) this.res.end();
  }
}
