// The scheduler's structured-output steps (vLLM V1's WAITING_FOR_FSM handling and
// get_grammar_bitmask), kept out of the scheduler's main path.
import type { StructuredOutputManager, GrammarBitmask } from '../../structured_output/manager.js';
import { type Request, RequestStatus } from '../request.js';

/**
 * A WAITING_FOR_FSM request: 'ready' once its grammar compiled (it becomes WAITING),
 * 'compiling' meanwhile, 'failed' when the compile failed (the scheduler finishes it).
 */
export function grammarStatus(request: Request): 'ready' | 'compiling' | 'failed' {
  const sor = request.structuredOutputRequest;
  if (sor === null || sor.grammar !== null) {
    request.status = RequestStatus.WAITING;
    return 'ready';
  }
  return sor.error === null ? 'compiling' : 'failed';
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
  return sampling.length > 0 ? manager.grammarBitmask(sampling) : null;
}
