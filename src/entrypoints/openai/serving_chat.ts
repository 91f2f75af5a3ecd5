// POST /v1/chat/completions (vLLM's OpenAIServingChat): the conversation is
// rendered with the chat template, generated as one prompt with n choices, and
// answered as a chat.completion or a stream of chat.completion.chunk events.
import type { ServerResponse } from 'node:http';
import { InvalidRequestError } from '../../errors.js';
import type { RequestOutput } from '../../outputs.js';
import type { ChatMessage } from '../../tokenizer/tokenizer.js';
import { SseWriter, toErrorInfo } from './http.js';
import { chatLogprobs, promptLogprobsJson } from './logprobs.js';
import type { ChatCompletionRequest, ChatLogProbs, ChatMessageParam, TokenizeChatRequest } from './protocol.js';
import { ChatOutputParser, parseToolCallArguments, toolGrammar, toolMode, type ToolOptions } from './chat_tools.js';
import { OpenAIServing, randomId, type TokenizedPrompt } from './serving_engine.js';
import { beamSearch, beamSearchParamsOf, checkBeamSearchRequest } from './serving_beam_search.js';

/** OpenAI content parts -> the text a chat template sees (text parts joined by newlines, as vLLM's "string" format). */
function messageContent(msg: ChatMessageParam, index: number): string | null {
  const content = msg.content;
  if (content === null || content === undefined) return null;
  if (typeof content === 'string') return content;
  const texts: string[] = [];
  for (const part of content) {
    if ((part.type === 'text' || part.type === 'input_text') && typeof part.text === 'string') texts.push(part.text);
    else if (part.type === 'refusal' && typeof part.refusal === 'string') texts.push(part.refusal);
    else {
      throw new InvalidRequestError(
        `messages[${index}].content has a part of type '${part.type}': this server serves a text-only model; send text parts only.`,
        `messages.${index}.content`,
      );
    }
  }
  return texts.join('\n');
}

export function toChatMessages(messages: ChatMessageParam[]): ChatMessage[] {
  return messages.map((m, i) => {
    const content = messageContent(m, i);
    return { ...m, content: content ?? (Array.isArray(m.tool_calls) ? null : '') };
  });
}

export class OpenAIServingChat extends OpenAIServing {
  private get toolOptions(): ToolOptions {
    return {
      enableAutoToolChoice: this.opts.enableAutoToolChoice ?? false,
      toolCallParser: this.opts.toolCallParser ?? null,
      reasoningParser: this.engine.args.reasoningParser ?? null,
    };
  }

  /**
   * Renders and tokenizes a conversation (shared with /tokenize, which renders
   * `tools` into the prompt as vLLM's does; generation refuses them, having no
   * tool-call parser, unless tool_choice is "none"). Long renderings are
   * length-checked and tokenized off the event loop (PromptGuard).
   */
  async renderChat(req: ChatCompletionRequest | TokenizeChatRequest, { forTokenize = false } = {}): Promise<TokenizedPrompt> {
    if (req.continue_final_message && req.add_generation_prompt) {
      throw new InvalidRequestError('Cannot set both `continue_final_message` and `add_generation_prompt` to True.', 'continue_final_message');
    }
    if (req.chat_template && !this.opts.trustRequestChatTemplate) {
      throw new InvalidRequestError(
        'Chat template is passed with request, but --trust-request-chat-template is not set. Refused request with untrusted chat template.',
        'chat_template',
      );
    }
    void forTokenize;
    const text = this.tokenizer.applyChatTemplate(toChatMessages(req.messages).map(parseToolCallArguments), {
      addGenerationPrompt: req.add_generation_prompt ?? !req.continue_final_message,
      continueFinalMessage: req.continue_final_message ?? false,
      chatTemplate: req.chat_template ?? this.engine.args.chatTemplate ?? null,
      documents: req.documents ?? null,
      chatTemplateKwargs: req.chat_template_kwargs ?? undefined,
      tools: req.tools ?? null,
    });
    const truncate = 'truncate_prompt_tokens' in req ? req.truncate_prompt_tokens : null;
    const ids = await this.opts.guard.encode(text, { addSpecialTokens: req.add_special_tokens ?? false, truncate, param: 'messages' });
    return { promptTokenIds: ids, prompt: text };
  }

  /** @param headerRequestId the client\'s X-Request-Id, which vLLM bases the request id on before the body\'s request_id */
  async create(req: ChatCompletionRequest, res: ServerResponse, signal: AbortSignal, headerRequestId?: string): Promise<void> {
    this.checkModel(req.model);
    this.checkCommon(req);
    checkBeamSearchRequest(req);
    const top = req.top_logprobs;
    if (top !== null && top !== undefined) {
      if (top < 0 && top !== -1) throw new InvalidRequestError('`top_logprobs` must be a positive value or -1.', 'top_logprobs');
      if ((top === -1 || top > 0) && !req.logprobs) {
        throw new InvalidRequestError('when using `top_logprobs`, `logprobs` must be set to true.', 'top_logprobs');
      }
    }
    if (req.messages.length === 0) throw new InvalidRequestError('messages must not be empty', 'messages');
    const rendered = await this.renderChat(req);
    rendered.promptTokenIds = this.truncate(rendered.promptTokenIds, {
      tokens: req.truncate_prompt_tokens,
      side: req.truncation_side,
      maxOutputTokens: req.max_completion_tokens ?? req.max_tokens ?? 0,
      maxOutputParam: req.max_completion_tokens !== null && req.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens',
    });

    const input = this.baseSamplingInput(req);
    const toolOpts = this.toolOptions;
    const mode = toolMode(req, toolOpts);
    input.structuredOutputs = toolGrammar(req, mode) ?? input.structuredOutputs;
    input.maxTokens = req.max_completion_tokens ?? req.max_tokens ?? null;
    input.logprobs = req.logprobs ? (top ?? 0) : null;
    input.promptLogprobs = req.prompt_logprobs ?? (req.echo ? (top ?? null) : null);
    const params = this.samplingParams(input, rendered.promptTokenIds.length);

    const requestId = `chatcmpl-${headerRequestId ?? req.request_id ?? randomId()}`;
    const extra = { priority: req.priority, cacheSalt: req.cache_salt };
    const gen = req.use_beam_search
      ? beamSearch(this, requestId, rendered, beamSearchParamsOf(this, req, params, rendered.promptTokenIds.length), signal, extra, req.skip_special_tokens ?? true)
      : this.generate(requestId, rendered, params, signal, extra);
    const role = req.add_generation_prompt === false ? (req.messages.at(-1)?.role ?? 'assistant') : 'assistant';
    const last = req.messages.at(-1);
    const echo = req.echo && last && last.role === role ? (messageContent(last, req.messages.length - 1) ?? '') : null;
    const thinking = this.reasoningContext(rendered.promptTokenIds, req.chat_template_kwargs);
    const parsers = mode.kind === 'none' && !toolOpts.reasoningParser ? null : Array.from({ length: params.n }, () => new ChatOutputParser(mode, toolOpts, thinking));
    const ctx: ChatCtx = { req, requestId, created: Math.floor(Date.now() / 1000), role, echo, n: params.n, parsers };
    if (req.stream) await this.stream(ctx, gen, res);
    else await this.full(ctx, gen, res);
  }

  private logprobs(ctx: ChatCtx, out: RequestOutput['outputs'][number]): ChatLogProbs | null {
    if (!ctx.req.logprobs) return null;
    return { content: chatLogprobs(out.tokenIds, out.logprobs ?? [], ctx.req.top_logprobs ?? 0, this.tokenizer, this.asTokenIds(ctx.req)) };
  }

  private async full(ctx: ChatCtx, gen: AsyncGenerator<RequestOutput, void>, res: ServerResponse): Promise<void> {
    let final: RequestOutput | null = null;
    for await (const out of gen) final = out;
    if (final === null) throw new Error(`request ${ctx.requestId} ended without an output`);
    const choices = final.outputs.map((out) => {
      const parts = ctx.parsers?.[out.index]!.whole(out.text);
      return {
      index: out.index,
      message: {
        role: ctx.role,
        content: parts ? parts.content : (ctx.echo ?? '') + out.text,
        refusal: null,
        annotations: null,
        audio: null,
        function_call: null,
        tool_calls: parts?.toolCalls ?? [],
        reasoning_content: parts?.reasoning ?? null,
        reasoning: parts?.reasoning ?? null,
      },
      logprobs: this.logprobs(ctx, out),
      finish_reason: parts?.toolsCalled && out.finishReason === 'stop' ? 'tool_calls' : out.finishReason,
      stop_reason: out.stopReason,
      token_ids: ctx.req.return_token_ids ? out.tokenIds : null,
    };
    });
    const completionTokens = final.outputs.reduce((a, o) => a + o.tokenIds.length, 0);
    const body = {
      id: ctx.requestId,
      object: 'chat.completion',
      created: ctx.created,
      model: this.modelName,
      choices,
      usage: this.usage(final.promptTokenIds.length, completionTokens, final.numCachedTokens),
      system_fingerprint: null,
      prompt_logprobs: ctx.req.prompt_logprobs !== null && ctx.req.prompt_logprobs !== undefined ? promptLogprobsJson(final.promptLogprobs) : null,
      prompt_token_ids: ctx.req.return_token_ids ? final.promptTokenIds : null,
    };
    const text = JSON.stringify(body);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async stream(ctx: ChatCtx, gen: AsyncGenerator<RequestOutput, void>, res: ServerResponse): Promise<void> {
    const { includeUsage, continuousUsage } = this.streamUsage(ctx.req);
    const numTokens = new Array<number>(ctx.n).fill(0);
    let promptTokens = 0;
    let cached: number | null = null;
    const sse = new SseWriter(res);
    const chunk = (choices: unknown[], usage?: unknown, promptTokenIds?: number[] | null) => ({
      id: ctx.requestId,
      object: 'chat.completion.chunk',
      created: ctx.created,
      model: this.modelName,
      choices,
      ...(usage ? { usage } : {}),
      // vLLM's field, on each choice's first (role) chunk only: the prompt's ids with return_token_ids, else null.
      ...(promptTokenIds !== undefined ? { prompt_token_ids: promptTokenIds } : {}),
    });
    const usageNow = () => (continuousUsage ? this.usage(promptTokens, numTokens.reduce((a, b) => a + b, 0), null) : undefined);
    const texts = new Array<string>(ctx.n).fill('');
    try {
      let first = true;
      for await (const out of gen) {
        if (first) {
          first = false;
          promptTokens = out.promptTokenIds.length;
          cached = out.numCachedTokens;
          for (let i = 0; i < ctx.n; i++) {
            const ids = ctx.req.return_token_ids ? out.promptTokenIds : null;
            await sse.send(chunk([{ index: i, delta: { role: ctx.role, content: '' }, logprobs: null, finish_reason: null }], usageNow(), ids));
            if (ctx.echo) {
              await sse.send(chunk([{ index: i, delta: { content: ctx.echo }, logprobs: null, finish_reason: null }], usageNow()));
            }
          }
        }
        for (const o of out.outputs) {
          if (o.text === '' && o.tokenIds.length === 0 && o.finishReason === null) continue;
          numTokens[o.index] += o.tokenIds.length;
          texts[o.index] += o.text;
          const parser = ctx.parsers?.[o.index];
          const delta = parser ? parser.streamed(texts[o.index]!, o.finishReason !== null) : { content: o.text };
          if (delta === null && o.finishReason === null && !ctx.req.logprobs) continue;
          const choice = {
            index: o.index,
            delta: delta ?? {},
            logprobs: this.logprobs(ctx, o),
            finish_reason: parser?.streamedToolCalls && o.finishReason === 'stop' ? 'tool_calls' : o.finishReason,
            ...(o.finishReason !== null ? { stop_reason: o.stopReason } : {}),
            token_ids: ctx.req.return_token_ids ? o.tokenIds : null,
          };
          await sse.send(chunk([choice], usageNow()));
        }
      }
      if (includeUsage) {
        await sse.send(chunk([], this.usage(promptTokens, numTokens.reduce((a, b) => a + b, 0), cached)));
      }
    } catch (e) {
      if (res.destroyed) return;
      await sse.send({ error: toErrorInfo(e) });
    }
    await sse.send('[DONE]');
    sse.end();
  }
}

interface ChatCtx {
  req: ChatCompletionRequest;
  requestId: string;
  created: number;
  role: string;
  /** The final message's content, prepended to the answer when echo is set and roles match. */
  echo: string | null;
  n: number;
  /** Per choice, when tools or a reasoning parser shape the answer. */
  parsers: ChatOutputParser[] | null;
}
