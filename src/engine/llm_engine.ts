// LLMEngine: the synchronous engine — Processor, an in-process EngineCore and the
// OutputProcessor — driven one step() at a time (what the offline LLM uses).
import type { EngineArgs } from '../config/engine_args.js';
import { loadModelConfig } from '../config/model_config.js';
import { resolveModelFiles } from '../hub/index.js';
import type { ModelConfig } from '../config/types.js';
import type { RequestOutput } from '../outputs.js';
import type { PoolingParams } from '../pooling_params.js';
import type { SamplingParams } from '../sampling_params.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { EngineCore } from './core.js';
import { OutputProcessor } from './output_processor.js';
import { stepTimer } from '../metrics/step_timer.js';
import { fanOut, ParentRequest } from './parallel_sampling.js';
import { type ProcessOptions, Processor, type PromptType } from './processor.js';

/** The tokenizer of args.tokenizer, else the one in the model's folder. */
export function loadTokenizer(args: EngineArgs): Tokenizer {
  return Tokenizer.fromPretrained(args.tokenizer ?? args.model);
}

export class LLMEngine {
  /** Child request ids of each n > 1 parent. */
  private readonly children = new Map<string, string[]>();

  private constructor(
    readonly modelConfig: ModelConfig,
    readonly tokenizer: Tokenizer,
    readonly processor: Processor,
    readonly outputProcessor: OutputProcessor,
    readonly engineCore: EngineCore,
  ) {}

  static async create(args: EngineArgs): Promise<LLMEngine> {
    args = await resolveModelFiles(args);
    const modelConfig = loadModelConfig(args.model, { maxModelLen: args.maxModelLen });
    const tokenizer = loadTokenizer(args);
    const core = await EngineCore.create(args, modelConfig);
    return new LLMEngine(modelConfig, tokenizer, new Processor(modelConfig, tokenizer, args, false), new OutputProcessor(tokenizer), core);
  }

  addRequest(requestId: string, prompt: PromptType, params: SamplingParams, opts: ProcessOptions & { poolingParams?: PoolingParams } = {}): void {
    const { request, promptText } = this.processor.processInputs(requestId, prompt, params, opts);
    if (opts.poolingParams) request.poolingParams = opts.poolingParams;
    const reqs = fanOut(request);
    const parent = reqs.length > 1 ? new ParentRequest(requestId, reqs.length) : null;
    if (parent) this.children.set(requestId, reqs.map((r) => r.requestId));
    reqs.forEach((r, i) => {
      this.outputProcessor.addRequest(r, promptText, parent, i);
      this.engineCore.addRequest(r);
    });
  }

  /** One engine step; returns the outputs it produced (finished or, by outputKind, partial). */
  step(): RequestOutput[] {
    const outs = this.engineCore.step();
    const { requestOutputs, reqsToAbort } = this.outputProcessor.processOutputs(outs.outputs);
    stepTimer.mark('output');
    if (reqsToAbort.length) this.engineCore.abortRequests(reqsToAbort);
    for (const o of requestOutputs) if (o.finished) this.children.delete(o.requestId);
    return requestOutputs;
  }

  abortRequest(ids: string | string[]): void {
    const all = (Array.isArray(ids) ? ids : [ids]).flatMap((id) => this.children.get(id) ?? [id]);
    for (const id of Array.isArray(ids) ? ids : [ids]) this.children.delete(id);
    this.outputProcessor.abortRequests(all);
    this.engineCore.abortRequests(all);
  }

  hasUnfinishedRequests(): boolean {
    return this.outputProcessor.hasUnfinishedRequests() || this.engineCore.hasUnfinishedRequests();
  }

  getNumUnfinishedRequests(): number {
    return this.outputProcessor.numUnfinishedRequests;
  }

  resetPrefixCache(): boolean {
    return this.engineCore.resetPrefixCache();
  }

  shutdown(): void {
    this.engineCore.shutdown();
  }
}
