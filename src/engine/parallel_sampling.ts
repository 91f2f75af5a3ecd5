// n > 1: a request fans out into n child requests in the core (each samples one
// completion; the prefix cache shares their prompt blocks) and fans back in here.
import type { CompletionOutput } from '../outputs.js';
import type { EngineCoreRequest } from '../core/types.js';

export function childRequestId(parentId: string, index: number): string {
  return `${index}_${parentId}`;
}

/** The n child requests of a parent (seeded children get seed + index, as in vLLM). */
export function fanOut(parent: EngineCoreRequest): EngineCoreRequest[] {
  const p = parent.samplingParams;
  if (p.n <= 1) return [parent];
  return Array.from({ length: p.n }, (_, i) => ({
    ...parent,
    requestId: childRequestId(parent.requestId, i),
    samplingParams: p.clone({ n: 1, seed: p.seed === null ? null : p.seed + i }),
  }));
}

/** Collects the children's completions of one parent request. */
export class ParentRequest {
  readonly completions: (CompletionOutput | null)[];
  private numFinished = 0;

  constructor(readonly requestId: string, readonly n: number) {
    this.completions = Array.from({ length: n }, () => null);
  }

  /** Records a child's latest completion; true when every child has finished. */
  update(index: number, completion: CompletionOutput, finished: boolean): boolean {
    this.completions[index] = completion;
    if (finished) this.numFinished++;
    return this.numFinished === this.n;
  }

  get finished(): boolean {
    return this.numFinished === this.n;
  }
}
