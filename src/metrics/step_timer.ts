// Optional per-phase timing of engine steps (VLLM_TS_STEP_TIMING=1): where a
// step's wall time goes — scheduling, the runner's phases, output processing.
// Printed as a table by report(); costs nothing when disabled.

export class StepTimer {
  static readonly enabled = process.env.VLLM_TS_STEP_TIMING === '1';
  private readonly totals = new Map<string, number>();
  private readonly counts = new Map<string, number>();
  private last = 0;

  get enabled(): boolean {
    return StepTimer.enabled;
  }

  /** Starts timing the phases of one step. */
  start(): void {
    if (StepTimer.enabled) this.last = performance.now();
  }

  /** Ends the current phase, charging the time since the previous mark to `phase`. */
  mark(phase: string): void {
    if (!StepTimer.enabled) return;
    const now = performance.now();
    this.totals.set(phase, (this.totals.get(phase) ?? 0) + now - this.last);
    this.counts.set(phase, (this.counts.get(phase) ?? 0) + 1);
    this.last = now;
  }

  report(): string {
    const rows = [...this.totals.entries()].map(([k, v]) => `${k.padEnd(16)} ${(v / (this.counts.get(k) ?? 1)).toFixed(3).padStart(9)} ms/step  ${v.toFixed(0).padStart(8)} ms total  (${this.counts.get(k)} steps)`);
    return rows.join('\n');
  }
}

/** One timer per thread: the engine core hands it to the runner (Worker.create). */
export const stepTimer = new StepTimer();
