// The offline API: `const llm = await LLM.create({ model }); await llm.generate(prompts, params)`.
import type { EngineArgs } from '../config/engine_args.js';
import { GenerationProgress, type ProgressStream } from './progress.js';
import { validateEngineArgs } from '../config/validate_engine_args.js';
import { LLMEngine } from '../engine/llm_engine.js';
import { type DownloadProgressOption, resolveModelFiles } from '../hub/index.js';
import type { PromptType } from '../engine/processor.js';
import type { EmbeddingRequestOutput, RequestOutput } from '../outputs.js';
import { makePoolingParams, type PoolingParams } from '../pooling_params.js';
import { SamplingParams, type SamplingParamsInput } from '../sampling_params.js';
import { beamSearchOffline } from './beam_search_offline.js';
import type { BeamSearchOutput, BeamSearchParams } from './beam_search.js';
import type { ApplyChatTemplateOptions, ChatMessage } from '../tokenizer/tokenizer.js';

export interface LLMOptions extends EngineArgs {
  /** Show a progress bar while generating (on a TTY only). Default true. */
  useTqdm?: boolean;
  /** Where the progress bar goes (default stderr; drawn only on a terminal). */
  progressStream?: ProgressStream;
  /** Milliseconds between redraws of the progress bar (default 100). */
  progressIntervalMs?: number;
  /**
   * Hub downloads: true (default) shows a bar per file on a TTY and a summary line
   * otherwise; false is silent; a function receives each DownloadProgressEvent instead.
   */
  downloadProgress?: DownloadProgressOption;
}

export interface ChatOptions extends Omit<ApplyChatTemplateOptions, 'chatTemplate'> {
  chatTemplate?: string | null;
  useTqdm?: boolean;
}

/** One SamplingParams (or the fields SamplingParams.create takes) for every prompt, or one per prompt. */
export type SamplingParamsArg = SamplingParams | SamplingParamsInput | (SamplingParams | SamplingParamsInput)[];

export class LLM {
  private requestCounter = 0;

  private constructor(readonly engine: LLMEngine, private readonly opts: LLMOptions) {}

  static async create(opts: LLMOptions): Promise<LLM> {
    validateEngineArgs(opts);
    const resolved = await resolveModelFiles(opts, opts.downloadProgress ?? true);
    return new LLM(await LLMEngine.create(resolved), resolved);
  }

  get tokenizer() {
    return this.engine.tokenizer;
  }

  /** vLLM's get_default_sampling_params: the model's generation_config defaults. */
  getDefaultSamplingParams(): SamplingParams {
    return this.engine.processor.defaultSamplingParams();
  }

  /** Generates for one prompt or a list; outputs come back in input order. */
  async generate(prompts: PromptType | PromptType[], samplingParams?: SamplingParamsArg, opts: { useTqdm?: boolean } = {}): Promise<RequestOutput[]> {
    const list = Array.isArray(prompts) ? prompts : [prompts];
    const params = this.resolveParams(samplingParams, list.length);
    const ids = list.map((p, i) => {
      const id = String(this.requestCounter++);
      this.engine.addRequest(id, p, params[i]);
      return id;
    });
    return this.runEngine(ids, opts.useTqdm ?? this.opts.useTqdm ?? true);
  }

  /** Renders each conversation with the chat template, then generates. */
  async chat(messages: ChatMessage[] | ChatMessage[][], samplingParams?: SamplingParamsArg, opts: ChatOptions = {}): Promise<RequestOutput[]> {
    return this.generate(this.chatPrompts(messages, opts), samplingParams, { useTqdm: opts.useTqdm });
  }

  /** The prompts `chat` generates from: each conversation rendered with the chat template and tokenized. */
  chatPrompts(messages: ChatMessage[] | ChatMessage[][], opts: ChatOptions = {}): { prompt: string; promptTokenIds: number[] }[] {
    const convs = (messages.length > 0 && Array.isArray(messages[0]) ? messages : [messages]) as ChatMessage[][];
    return convs.map((conv) => {
      const text = this.tokenizer.applyChatTemplate(conv, {
        addGenerationPrompt: true,
        ...opts,
        chatTemplate: opts.chatTemplate ?? this.opts.chatTemplate ?? null,
      });
      return { prompt: text, promptTokenIds: this.tokenizer.encode(text, { addSpecialTokens: false }) };
    });
  }

  /**
   * Generates for all prompts at once (batched, as generate) and yields each new
   * piece of text as the engine makes it: [prompt index, delta output]. The last
   * output of a prompt has `finished` set.
   */
  async *stream(prompts: PromptType[], samplingParams?: SamplingParamsArg): AsyncGenerator<[number, RequestOutput]> {
    const params = this.resolveParams(samplingParams, prompts.length).map((p) => SamplingParams.fromPlain({ ...p, outputKind: 'delta' }));
    const index = new Map<string, number>();
    for (const [i, p] of prompts.entries()) {
      const id = String(this.requestCounter++);
      index.set(id, i);
      this.engine.addRequest(id, p, params[i]);
    }
    try {
      while (this.engine.hasUnfinishedRequests()) {
        for (const out of this.engine.step()) yield [index.get(out.requestId)!, out];
        await new Promise((r) => setImmediate(r)); // let the terminal drain and signals arrive
      }
    } finally {
      const left = [...index.keys()];
      if (this.engine.hasUnfinishedRequests()) this.engine.abortRequest(left);
    }
  }

  /**
   * Embeddings of the prompts (vLLM's pooling runner for decoder-only models): the
   * final normed hidden state of the last prompt token, or the mean over the prompt.
   */
  async embed(prompts: PromptType | PromptType[], opts: Partial<PoolingParams> & { useTqdm?: boolean } = {}): Promise<EmbeddingRequestOutput[]> {
    const list = Array.isArray(prompts) ? prompts : [prompts];
    const poolingParams = makePoolingParams(opts);
    const params = SamplingParams.create({ temperature: 0, maxTokens: 1 });
    const ids = list.map((p) => {
      const id = String(this.requestCounter++);
      this.engine.addRequest(id, p, params, { poolingParams });
      return id;
    });
    const outs = await this.runEngine(ids, opts.useTqdm ?? this.opts.useTqdm ?? true);
    return outs.map((o) => ({ requestId: o.requestId, promptTokenIds: o.promptTokenIds, outputs: { embedding: o.embedding ?? [] }, finished: o.finished }));
  }

  /**
   * vLLM's LLM.beam_search: per prompt the beamWidth best sequences (tokens include
   * the prompt, text is their decoding), best first. See ./beam_search.ts.
   */
  async beamSearch(prompts: PromptType | PromptType[], params: BeamSearchParams): Promise<BeamSearchOutput[]> {
    const list = Array.isArray(prompts) ? prompts : [prompts];
    return beamSearchOffline(this.engine, list, params, (ps, sp) => this.generate(ps, sp, { useTqdm: false }));
  }

  resetPrefixCache(): boolean {
    return this.engine.resetPrefixCache();
  }

  /** Releases the model and the KV cache. */
  close(): void {
    this.engine.shutdown();
  }

  private resolveParams(arg: SamplingParamsArg | undefined, n: number): SamplingParams[] {
    const one = (p: SamplingParams | SamplingParamsInput) => (p instanceof SamplingParams ? p : SamplingParams.create(p));
    if (arg === undefined) return Array.from({ length: n }, () => this.getDefaultSamplingParams());
    if (!Array.isArray(arg)) return Array.from({ length: n }, () => one(arg));
    if (arg.length !== n) throw new Error(`The lengths of prompts (${n}) and sampling_params (${arg.length}) must be the same.`);
    return arg.map(one);
  }

  private async runEngine(ids: string[], useTqdm: boolean): Promise<RequestOutput[]> {
    const done = new Map<string, RequestOutput>();
    const bar = new GenerationProgress(ids.length, useTqdm ? (this.opts.progressStream ?? process.stderr) : null, this.opts.progressIntervalMs);
    const generated0 = this.engine.numGeneratedTokens;
    let inToks = 0;
    try {
      while (this.engine.hasUnfinishedRequests()) {
        for (const out of this.engine.step()) {
          if (!out.finished) continue;
          done.set(out.requestId, out);
          inToks += out.promptTokenIds.length;
        }
        bar.update(done.size, inToks, this.engine.numGeneratedTokens - generated0);
      }
    } finally {
      bar.stop();
    }
    return ids.map((id) => {
      const out = done.get(id);
      if (!out) throw new Error(`request ${id} did not finish`);
      return out;
    });
  }
}
