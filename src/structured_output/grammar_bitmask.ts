// The runner's side of the step's bitmask: the grammar thread fills it in shared
// memory while the model's forward runs; this waits for it just before sampling.
import { initLogger } from '../logger.js';
import { CTL_DEAD, CTL_FILL_DONE, ctlStats, STAT_WAIT_MS } from './grammar_protocol.js';
import type { GrammarBitmask } from './request.js';

const logger = initLogger('structured_output');

/** A wait longer than this is logged (a compile running on the grammar thread delays fills). */
const SLOW_WAIT_MS = 5000;

/**
 * The step's rows ([reqIds.length, ceil(vocab/32)] int32), once the grammar thread
 * has written them (Atomics.wait on its fill counter). If the thread has stopped,
 * every row allows every token for this step (its requests are finished next step).
 */
export function awaitGrammarBitmask(gb: GrammarBitmask): Int32Array {
  const { ctl, seq } = gb;
  let done = Atomics.load(ctl, CTL_FILL_DONE);
  if (done < seq) {
    const t0 = performance.now();
    let warned = false;
    while (done < seq && Atomics.load(ctl, CTL_DEAD) === 0) {
      Atomics.wait(ctl, CTL_FILL_DONE, done, 100);
      done = Atomics.load(ctl, CTL_FILL_DONE);
      if (!warned && performance.now() - t0 > SLOW_WAIT_MS) {
        warned = true;
        logger.warn(`waited ${SLOW_WAIT_MS} ms for the grammar thread's bitmask (a long compile is running there)`);
      }
    }
    ctlStats(ctl)[STAT_WAIT_MS] += performance.now() - t0;
    if (done < seq) gb.bitmask.fill(-1);
  }
  // One fill in flight at a time: a later fill would have overwritten these rows.
  if (done > seq) throw new Error(`structured outputs: the bitmask of fill ${seq} was read after fill ${done}`);
  return gb.bitmask;
}
