// The offline driver of beam search (LLM.beamSearch): every live beam of every prompt
// is one request of a batch per step, run through LLM.generate.
import type { LLMEngine } from '../engine/llm_engine.js';
import type { PromptType } from '../engine/processor.js';
import type { RequestOutput } from '../outputs.js';
import type { SamplingParams } from '../sampling_params.js';
import { BeamSearchInstance, type BeamSearchOutput, type BeamSearchParams, beamStepParams, checkBeamSearchParams, runBeamSearch } from './beam_search.js';

type Generate = (prompts: PromptType[], params: SamplingParams) => Promise<RequestOutput[]>;

export async function beamSearchOffline(engine: LLMEngine, prompts: PromptType[], params: BeamSearchParams, generate: Generate): Promise<BeamSearchOutput[]> {
  checkBeamSearchParams(params);
  const tokenizer = engine.tokenizer;
  const stepParams = beamStepParams(params);
  const instances = prompts.map((p) => {
    const { promptTokenIds } = engine.processor.tokenize(p);
    return new BeamSearchInstance(promptTokenIds, params, tokenizer.eosTokenId, tokenizer, engine.modelConfig.maxModelLen);
  });
  await runBeamSearch(instances, async (seqs) => {
    const outs = await generate(seqs.map((t) => ({ promptTokenIds: t })), stepParams);
    return outs.map((o) => o.outputs[0]?.logprobs?.[0] ?? null);
  });
  // NOTE: as vLLM's LLM.beam_search, the text decodes the whole sequence (prompt included).
  return instances.map((inst) => ({ sequences: inst.best().map((b) => ({ ...b, text: tokenizer.decode(b.tokens) })) }));
}
