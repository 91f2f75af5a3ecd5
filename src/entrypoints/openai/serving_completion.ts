// POST /v1/completions (vLLM's OpenAIServingCompletion): one or several prompts
// (text or token ids), n choices each, echo, logprobs, streamed or not.
import type { ServerResponse } from 'node:http';
import { InvalidRequestError } from '../../errors.js';
import type { Logprob, RequestOutput } from '../../outputs.js';
import type { SamplingParams } from '../../sampling_params.js';
import { SseWriter, toErrorInfo } from './http.js';
import { completionLogprobs, promptLogprobsJson } from './logprobs.js';
import type { CompletionLogProbs, CompletionRequest } from './protocol.js';
import { beamSearch, beamSearchParamsOf, checkBeamSearchRequest } from './serving_beam_search.js';
import { mergeAsyncIterators, OpenAIServing, randomId, type TokenizedPrompt } from './serving_engine.js';

type Steps = (Record<number, Logprob> | null)[];

export class OpenAIServingCompletion extends OpenAIServing {
  /** @param headerRequestId the client\'s X-Request-Id, which vLLM bases the request id on before the body\'s request_id */
  async create(req: CompletionRequest, res: ServerResponse, signal: AbortSignal, headerRequestId?: string): Promise<void> {
    this.checkModel(req.model);
    this.checkCommon(req);
    checkBeamSearchRequest(req);
    if (req.suffix !== null && req.suffix !== undefined) {
      throw new InvalidRequestError('suffix is not currently supported', 'suffix');
    }
    const prompts = await this.tokenizePrompts(req);
    const echoOnly = req.echo === true && req.max_tokens === 0;
    const input = this.baseSamplingInput(req);
    // NOTE: absent max_tokens is 16 (OpenAI's default); null means up to the context length.
    input.maxTokens = echoOnly ? 1 : req.max_tokens === undefined ? 16 : req.max_tokens;
    input.logprobs = req.logprobs ?? null;
    input.promptLogprobs = req.prompt_logprobs ?? (req.echo ? (req.logprobs ?? null) : null);
    const params = prompts.map((p) => this.samplingParams(input, p.promptTokenIds.length));

    const requestId = `cmpl-${headerRequestId ?? req.request_id ?? randomId()}`;
    const created = Math.floor(Date.now() / 1000);
    const extra = { priority: req.priority, cacheSalt: req.cache_salt };
    const gens: AsyncGenerator<RequestOutput, void>[] = [];
    try {
      for (const [i, p] of prompts.entries()) {
        const id = `${requestId}-${i}`;
        if (req.use_beam_search) {
          const beam = beamSearchParamsOf(this, req, params[i], p.promptTokenIds.length);
          gens.push(beamSearch(this, id, p, beam, signal, extra, req.skip_special_tokens ?? true));
        } else gens.push(this.generate(id, p, params[i], signal, extra));
      }
    } catch (e) {
      // A later prompt is invalid: the earlier ones must not run on.
      await Promise.all(gens.map((g) => g.return()));
      throw e;
    }
    const ctx: Ctx = { req, requestId, created, prompts, params, echoOnly };
    if (req.stream) await this.stream(ctx, gens, res);
    else await this.full(ctx, gens, res);
  }

  private tokenizePrompts(req: CompletionRequest): Promise<TokenizedPrompt[]> {
    const p = req.prompt;
    const empty = () => new InvalidRequestError('Either prompt or prompt_embeds must be provided and non-empty.', 'prompt');
    if (p === null || p === undefined || p === '' || (Array.isArray(p) && p.length === 0)) throw empty();
    // NOTE: absent max_tokens is 16; null (up to the context) leaves no room to keep, as vLLM's 0.
    const maxOutputTokens = req.max_tokens === undefined ? 16 : (req.max_tokens ?? 0);
    const truncation = { tokens: req.truncate_prompt_tokens, side: req.truncation_side, maxOutputTokens };
    return this.tokenizeInputs(p, req.add_special_tokens ?? true, truncation, empty);
  }

  private promptText(ctx: Ctx, i: number): string {
    const p = ctx.prompts[i];
    return p.prompt ?? this.tokenizer.decode(p.promptTokenIds);
  }

  /** The text, token ids and logprob steps of one choice (with the prompt when echoing). */
  private choiceParts(ctx: Ctx, promptIdx: number, out: RequestOutput['outputs'][number], res: RequestOutput, withPrompt: boolean) {
    if (!withPrompt) return { text: out.text, tokenIds: out.tokenIds, steps: (out.logprobs ?? []) as Steps };
    const promptSteps = (res.promptLogprobs ?? []) as Steps;
    if (ctx.echoOnly) return { text: this.promptText(ctx, promptIdx), tokenIds: res.promptTokenIds, steps: promptSteps };
    return {
      text: this.promptText(ctx, promptIdx) + out.text,
      tokenIds: [...res.promptTokenIds, ...out.tokenIds],
      steps: [...promptSteps, ...(out.logprobs ?? [])],
    };
  }

  private logprobs(ctx: Ctx, tokenIds: number[], steps: Steps, offset = 0): CompletionLogProbs | null {
    if (ctx.req.logprobs === null || ctx.req.logprobs === undefined) return null;
    return completionLogprobs(tokenIds, steps, ctx.req.logprobs, this.tokenizer, offset, this.asTokenIds(ctx.req));
  }

  private async full(ctx: Ctx, gens: AsyncGenerator<RequestOutput, void>[], res: ServerResponse): Promise<void> {
    const finals: (RequestOutput | null)[] = gens.map(() => null);
    for await (const [i, out] of mergeAsyncIterators(gens)) finals[i] = out;
    const choices = [];
    let promptTokens = 0;
    let completionTokens = 0;
    let cached: number | null = null;
    for (const [i, final] of finals.entries()) {
      if (final === null) throw new Error(`request ${ctx.requestId}-${i} ended without an output`);
      for (const out of final.outputs) {
        const parts = this.choiceParts(ctx, i, out, final, ctx.req.echo === true);
        choices.push({
          index: choices.length,
          text: parts.text,
          logprobs: this.logprobs(ctx, parts.tokenIds, parts.steps),
          finish_reason: out.finishReason,
          stop_reason: out.stopReason,
          // vLLM's fields: present as null unless return_token_ids is set.
          token_ids: ctx.req.return_token_ids ? out.tokenIds : null,
          prompt_logprobs: ctx.req.prompt_logprobs !== null && ctx.req.prompt_logprobs !== undefined ? promptLogprobsJson(final.promptLogprobs) : null,
          prompt_token_ids: ctx.req.return_token_ids ? final.promptTokenIds : null,
        });
        completionTokens += ctx.echoOnly ? 0 : out.tokenIds.length;
      }
      promptTokens += final.promptTokenIds.length;
      cached = final.numCachedTokens;
    }
    const body = {
      id: ctx.requestId,
      object: 'text_completion',
      created: ctx.created,
      model: this.modelName,
      choices,
      usage: this.usage(promptTokens, completionTokens, cached),
      system_fingerprint: null,
    };
    const text = JSON.stringify(body);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async stream(ctx: Ctx, gens: AsyncGenerator<RequestOutput, void>[], res: ServerResponse): Promise<void> {
    const n = ctx.params[0].n;
    const numChoices = n * ctx.prompts.length;
    const textLens = new Array<number>(numChoices).fill(0);
    const numTokens = new Array<number>(numChoices).fill(0);
    const echoed = new Array<boolean>(numChoices).fill(false);
    const promptLens = ctx.prompts.map((p) => p.promptTokenIds.length);
    const { includeUsage, continuousUsage } = this.streamUsage(ctx.req);
    const promptIdsSent = new Array<boolean>(numChoices).fill(false);
    let cached: number | null = null;
    const sse = new SseWriter(res);
    const chunk = (choices: unknown[], usage?: unknown) => ({
      id: ctx.requestId,
      object: 'text_completion',
      created: ctx.created,
      model: this.modelName,
      choices,
      // NOTE: vLLM serializes completion chunks with every field (exclude_unset=False): usage is null until the end.
      usage: usage ?? null,
    });
    try {
      for await (const [p, out] of mergeAsyncIterators(gens)) {
        cached ??= out.numCachedTokens;
        for (const o of out.outputs) {
          const i = o.index + p * n;
          const withPrompt = ctx.req.echo === true && !echoed[i];
          echoed[i] ||= withPrompt;
          const parts = this.choiceParts(ctx, p, o, out, withPrompt);
          if (!withPrompt && parts.text === '' && parts.tokenIds.length === 0 && o.finishReason === null) continue;
          const logprobs = this.logprobs(ctx, parts.tokenIds, parts.steps, textLens[i]);
          textLens[i] += [...parts.text].length;
          numTokens[i] += ctx.echoOnly ? 0 : o.tokenIds.length;
          const usage = continuousUsage ? this.usage(promptLens[p], numTokens[i], null) : undefined;
          const choice = {
            index: i,
            text: parts.text,
            logprobs,
            finish_reason: o.finishReason,
            stop_reason: o.stopReason,
            // NOTE: the prompt's ids go with each choice's first chunk only (vLLM's rule).
            prompt_token_ids: ctx.req.return_token_ids && !promptIdsSent[i] ? out.promptTokenIds : null,
            token_ids: ctx.req.return_token_ids ? o.tokenIds : null,
          };
          promptIdsSent[i] = true;
          await sse.send(chunk([choice], usage));
        }
      }
      if (includeUsage) {
        const completion = numTokens.reduce((a, b) => a + b, 0);
        const prompt = promptLens.reduce((a, b) => a + b, 0);
        await sse.send(chunk([], this.usage(prompt, completion, cached)));
      }
    } catch (e) {
      if (signalAborted(res)) return;
      await sse.send({ error: toErrorInfo(e) });
    }
    await sse.send('[DONE]');
    sse.end();
  }
}

interface Ctx {
  req: CompletionRequest;
  requestId: string;
  created: number;
  prompts: TokenizedPrompt[];
  params: SamplingParams[];
  echoOnly: boolean;
}

function signalAborted(res: ServerResponse): boolean {
  return res.destroyed;
}
