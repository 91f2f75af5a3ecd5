// The step's grammar bitmask as a rank other than 0 sees it. The grammar thread
// fills the bitmask in shared memory while rank 0's forward runs, and the next
// step's fill overwrites it as soon as rank 0's step is done; another rank that
// read it after its own forward could read the next step's rows (a worker thread)
// or a copy taken before the fill (a child process gets the bytes at send time).
// So the other ranks wait for the fill before their forward starts and keep a
// private copy: rank 0 cannot finish the step (its collectives wait for every rank)
// before the copy is taken. The cost: with structured outputs under tensor
// parallelism, the fill no longer overlaps the forward.
import type { SchedulerOutput } from '../core/sched/output.js';
import { awaitGrammarBitmask } from '../structured_output/grammar_bitmask.js';

/** so with its grammarBitmask (if any) filled and copied out of shared memory (in place; returns so). */
export function settleGrammarBitmask(so: SchedulerOutput): SchedulerOutput {
  const gb = so.grammarBitmask;
  if (!gb) return so;
  const bitmask = awaitGrammarBitmask(gb).slice(); // [rows, ceil(vocab / 32)] int32
  // The control words (and the stats after them) as they are now, the fill counter
  // at or past seq (or the thread marked dead): the runner's wait returns at once.
  const ctl = new Int32Array(gb.ctl.buffer.slice(0), gb.ctl.byteOffset, gb.ctl.length);
  so.grammarBitmask = { ...gb, bitmask, ctl };
  return so;
}
