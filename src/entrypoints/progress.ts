// The offline progress bar (vLLM's tqdm line in LLM.generate): prompts done out of
// all, elapsed seconds, and input / output tokens per second, redrawn as the engine
// steps (every 100 ms by default), not only when requests finish, so that a batch that
// finishes together still shows its time and speed while it runs.
import cliProgress from 'cli-progress';

export interface ProgressStream {
  isTTY?: boolean;
  write(chunk: string): boolean;
}

export class GenerationProgress {
  private readonly bar: cliProgress.SingleBar | null;
  private readonly t0 = performance.now();
  private lastDraw = -Infinity;

  /** No bar (null) unless `stream` is a terminal. */
  constructor(total: number, stream: ProgressStream | null, private readonly intervalMs = 100) {
    if (stream === null || !stream.isTTY) {
      this.bar = null;
      return;
    }
    this.bar = new cliProgress.SingleBar(
      {
        format: 'Processed prompts: {bar} {value}/{total} [{elapsed}s, est. speed input: {inTps} toks/s, output: {outTps} toks/s]',
        stream: stream as unknown as NodeJS.WritableStream,
        hideCursor: true,
        fps: 10,
        // NOTE: the engine loop is synchronous, so cli-progress's own redraw timer
        // would not fire while it runs: update() draws.
        synchronousUpdate: false,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(total, 0, { elapsed: '0.0', inTps: '0.00', outTps: '0.00' });
  }

  /** After an engine step: prompts finished, prompt tokens of those, tokens generated so far (all requests). */
  update(done: number, promptTokens: number, generatedTokens: number): void {
    if (this.bar === null) return;
    const secs = Math.max(1e-3, (performance.now() - this.t0) / 1000);
    this.bar.update(done, { elapsed: secs.toFixed(1), inTps: (promptTokens / secs).toFixed(2), outTps: (generatedTokens / secs).toFixed(2) });
    const now = performance.now();
    if (now - this.lastDraw >= this.intervalMs) {
      this.lastDraw = now;
      this.bar.render();
    }
  }

  stop(): void {
    this.bar?.stop();
  }
}
