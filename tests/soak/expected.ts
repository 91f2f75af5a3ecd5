// The output each greedy or seeded soak request must get: the same request run
// alone through the offline LLM.generate, one at a time, before any load starts.
import type { EngineArgs } from '../../src/config/engine_args.js';
import { LLM } from '../../src/entrypoints/llm.js';
import { SamplingParams } from '../../src/sampling_params.js';
import type { PlannedRequest } from './workload.js';

export interface Expected {
  texts: string[];
  tokenIds: number[][];
}

export async function computeExpected(plan: PlannedRequest[], args: EngineArgs): Promise<Map<number, Expected>> {
  const llm = await LLM.create({ ...args, useTqdm: false });
  const out = new Map<number, Expected>();
  try {
    for (const p of plan) {
      if (p.offline === null) continue;
      const [r] = await llm.generate(p.offline.prompt, SamplingParams.create(p.offline.params));
      const sorted = [...r.outputs].sort((a, b) => a.index - b.index);
      out.set(p.index, { texts: sorted.map((o) => o.text), tokenIds: sorted.map((o) => o.tokenIds) });
    }
  } finally {
    llm.close();
  }
  return out;
}
