// Stop conditions checked after each sampled token (vLLM's check_stop), and the
// EngineCoreOutput a step reports for one request.
import { type Request, RequestStatus } from '../request.js';
import type { EngineCoreOutput } from '../types.js';

/**
 * Sets the request's finished status and returns true when its last output
 * token ends it. Order: EOS (unless ignoreEos) and stopTokenIds, both only
 * once minTokens outputs exist; then maxTokens and maxModelLen ('length').
 *
 * NOTE: vLLM returns early while numOutputTokens < minTokens, before the
 * length checks; we keep the length checks there too, so that no request ever
 * passes maxModelLen (maxTokens >= minTokens is validated anyway, so the
 * maxTokens check is unaffected).
 */
export function checkStop(request: Request, maxModelLen: number): boolean {
  const sp = request.samplingParams;
  const last = request.outputTokenIds[request.outputTokenIds.length - 1];
  if (request.numOutputTokens >= (sp.minTokens ?? 0)) {
    if (!sp.ignoreEos && request.eosTokenIds.includes(last)) {
      request.status = RequestStatus.FINISHED_STOPPED;
      request.stopReason = null;
      return true;
    }
    if (sp.stopTokenIds?.includes(last)) {
      request.status = RequestStatus.FINISHED_STOPPED;
      request.stopReason = last;
      return true;
    }
  }
  if (request.numOutputTokens >= request.maxTokens || request.numTokens >= maxModelLen) {
    request.status = RequestStatus.FINISHED_LENGTH_CAPPED;
    return true;
  }
  return false;
}

/** One request's EngineCoreOutput for this step; takes its pending prompt logprobs and events. */
export function makeOutput(
  request: Request,
  newTokenIds: number[],
  newLogprobs: EngineCoreOutput['newLogprobs'],
  finished: boolean,
): EngineCoreOutput {
  const newPromptLogprobs = request.pendingPromptLogprobs;
  request.pendingPromptLogprobs = null;
  const events = request.takeEvents();
  return {
    requestId: request.requestId,
    newTokenIds,
    newLogprobs,
    newPromptLogprobs,
    finishReason: finished ? request.getFinishedReason() : null,
    stopReason: request.stopReason,
    numCachedTokens: Math.max(0, request.numCachedTokens),
    ...(events ? { events } : {}),
  };
}
