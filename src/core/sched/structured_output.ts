// The scheduler's structured-output steps (vLLM V1's WAITING_FOR_FSM handling and
// get_grammar_bitmask), kept out of the scheduler's main path. The grammar work itself
// runs on the grammar thread (structured_output/manager.ts); these only read its notices
// and post the step's fill.
import type { StructuredOutputManager } from '../../structured_output/manager.js';
import type { GrammarBitmask } from '../../structured_output/request.js';
import { type Request, RequestStatus } from '../request.js';

/**
 * A WAITING_FOR_FSM request: true (and it becomes WAITING) once the grammar thread
 * said its grammar is ready; the check reads a field set by the last notice, never waits.
 */
export function grammarIsReady(request: Request): boolean {
  const sor = request.structuredOutputRequest;
  if (sor !== null && sor.status !== 'ready') return false;
  request.status = RequestStatus.WAITING;
  return true;
}

/** Reads the grammar thread's notices (without blocking); the unfinished requests whose grammar failed. */
export function takeFailedGrammars(manager: StructuredOutputManager, requests: ReadonlyMap<string, Request>): Request[] {
  manager.pollNotices();
  return manager.takeFailed().flatMap((id) => {
    const r = requests.get(id);
    return r === undefined || r.isFinished ? [] : [r];
  });
}

/** The bitmask of the constrained requests whose scheduled tokens end at a sample this step. */
export function stepGrammarBitmask(
  manager: StructuredOutputManager, requests: ReadonlyMap<string, Request>, computedBefore: ReadonlyMap<string, number>,
  numScheduledTokens: Record<string, number>,
): GrammarBitmask | null {
  const sampling: Request[] = [];
  for (const [id, before] of computedBefore) {
    const r = requests.get(id)!;
    if (r.structuredOutputRequest !== null && before + numScheduledTokens[id]! >= r.numTokens) sampling.push(r);
  }
  const gb = sampling.length > 0 ? manager.grammarBitmask(sampling) : null;
  manager.flush(); // the step's one message: inits, the last step's accepts and releases, the fill
  return gb;
}
