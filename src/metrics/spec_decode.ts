// Speculative-decoding metrics (vLLM's v1/spec_decode/metrics.py): the acceptance
// line the logging stat logger adds to its periodic line, and the Prometheus counters.
import { Counter, type Registry } from 'prom-client';
import type { SpecDecodingStats } from '../core/types.js';

/** vLLM's SpecDecodingLogging: sums the steps' stats between two log lines. */
export class SpecDecodingLogging {
  private numDrafts = 0;
  private numDraftTokens = 0;
  private numAcceptedTokens = 0;
  private acceptedPerPos: number[] = [];
  private lastLogTime = performance.now();

  observe(s: SpecDecodingStats): void {
    this.numDrafts += s.numDrafts;
    this.numDraftTokens += s.numDraftTokens;
    this.numAcceptedTokens += s.numAcceptedTokens;
    s.numAcceptedTokensPerPos.forEach((n, i) => (this.acceptedPerPos[i] = (this.acceptedPerPos[i] ?? 0) + n));
  }

  /** vLLM's line ("SpecDecoding metrics: Mean acceptance length: ..."), or null when no draft was verified; resets. */
  takeLine(now = performance.now()): string | null {
    const dt = (now - this.lastLogTime) / 1000;
    this.lastLogTime = now;
    if (this.numDrafts === 0) return null;
    const rate = this.numDraftTokens > 0 ? (100 * this.numAcceptedTokens) / this.numDraftTokens : NaN;
    const perPos = this.acceptedPerPos.map((n) => (n / this.numDrafts).toFixed(3)).join(', ');
    const line =
      `SpecDecoding metrics: Mean acceptance length: ${(1 + this.numAcceptedTokens / this.numDrafts).toFixed(2)}, ` +
      `Accepted throughput: ${(dt > 0 ? this.numAcceptedTokens / dt : 0).toFixed(2)} tokens/s, ` +
      `Drafted throughput: ${(dt > 0 ? this.numDraftTokens / dt : 0).toFixed(2)} tokens/s, ` +
      `Accepted: ${this.numAcceptedTokens} tokens, Drafted: ${this.numDraftTokens} tokens, ` +
      `Per-position acceptance rate: ${perPos}, Avg Draft acceptance rate: ${rate.toFixed(1)}%`;
    this.numDrafts = this.numDraftTokens = this.numAcceptedTokens = 0;
    this.acceptedPerPos = [];
    return line;
  }
}

type Labels = 'model_name' | 'engine';

/**
 * vLLM's SpecDecodingProm: counters of drafts, draft tokens, accepted tokens and
 * accepted tokens per draft position (label position 0..K-1), registered only when
 * speculative decoding is on. Exposed with the _total suffix prometheus_client gives
 * vLLM's counters (vllm:spec_decode_num_drafts_total, ...).
 */
export class SpecDecodingProm {
  private readonly drafts: Counter<Labels>;
  private readonly draftTokens: Counter<Labels>;
  private readonly acceptedTokens: Counter<Labels>;
  private readonly acceptedPerPos: Counter<Labels | 'position'>;

  constructor(registry: Registry, private readonly labels: Record<Labels, string>, readonly numSpecTokens: number) {
    const labelNames = ['model_name', 'engine'] as const;
    const counter = (name: string, help: string) => new Counter({ name, help, labelNames, registers: [registry] });
    this.drafts = counter('vllm:spec_decode_num_drafts_total', 'Number of spec decoding drafts.');
    this.draftTokens = counter('vllm:spec_decode_num_draft_tokens_total', 'Number of draft tokens.');
    this.acceptedTokens = counter('vllm:spec_decode_num_accepted_tokens_total', 'Number of accepted tokens.');
    this.acceptedPerPos = new Counter({
      name: 'vllm:spec_decode_num_accepted_tokens_per_pos_total',
      help: 'Accepted tokens per draft position.',
      labelNames: [...labelNames, 'position'],
      registers: [registry],
    });
    for (const c of [this.drafts, this.draftTokens, this.acceptedTokens]) c.inc(labels, 0);
    for (let pos = 0; pos < numSpecTokens; pos++) this.acceptedPerPos.inc({ ...labels, position: String(pos) }, 0);
  }

  observe(s: SpecDecodingStats): void {
    const l = this.labels;
    this.drafts.inc(l, s.numDrafts);
    this.draftTokens.inc(l, s.numDraftTokens);
    this.acceptedTokens.inc(l, s.numAcceptedTokens);
    s.numAcceptedTokensPerPos.forEach((n, pos) => n > 0 && this.acceptedPerPos.inc({ ...l, position: String(pos) }, n));
  }
}
