// Tool calling and reasoning in chat completions (vLLM's serving_chat tool paths):
// tool_choice checks, the grammar that enforces "required" and named choices, and
// one choice's output split into reasoning, content and tool calls, whole or
// streamed.
import { InvalidRequestError } from '../../errors.js';
import type { StructuredOutputsParams } from '../../structured_output/params.js';
import type { ChatCompletionRequest } from './protocol.js';
import { type ReasoningParser, reasoningParserFor } from './reasoning_parsers/reasoning_parser.js';
import { type DeltaToolCall, RequiredToolCallsParser, type ToolCall, type ToolParser, toolParserFor } from './tool_parsers/index.js';
import { randomToolCallId } from './tool_parsers/tool_parser.js';

export interface ToolOptions {
  /** --enable-auto-tool-choice */
  enableAutoToolChoice?: boolean;
  /** --tool-call-parser */
  toolCallParser?: string | null;
  /** --reasoning-parser */
  reasoningParser?: string | null;
}

interface FunctionDef {
  name: string;
  parameters?: Record<string, unknown>;
}

type ToolMode = { kind: 'none' } | { kind: 'auto' } | { kind: 'required' } | { kind: 'named'; name: string };

function functionsOf(req: ChatCompletionRequest): FunctionDef[] {
  return (req.tools ?? []).map((t, i) => {
    const f = (t as { function?: FunctionDef }).function;
    if (!f || typeof f.name !== 'string') throw new InvalidRequestError(`tools[${i}] needs function.name`, `tools.${i}.function`);
    return f;
  });
}

/** How the request uses tools; 400s as vLLM's for a bad tool_choice. */
export function toolMode(req: ChatCompletionRequest, opts: ToolOptions): ToolMode {
  const tools = functionsOf(req);
  const choice = req.tool_choice ?? (tools.length > 0 ? 'auto' : 'none');
  if (choice === 'none') return { kind: 'none' };
  if (tools.length === 0) throw new InvalidRequestError('When using `tool_choice`, `tools` must be set.', 'tool_choice');
  if (choice === 'auto') {
    if (!opts.enableAutoToolChoice || !opts.toolCallParser) {
      throw new InvalidRequestError('"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set', 'tool_choice');
    }
    return { kind: 'auto' };
  }
  if (choice === 'required') return { kind: 'required' };
  if (typeof choice === 'object') {
    const name = (choice as { function?: { name?: unknown } }).function?.name;
    if (typeof name !== 'string') throw new InvalidRequestError('tool_choice must name a function: {"type": "function", "function": {"name": ...}}', 'tool_choice');
    if (!tools.some((t) => t.name === name)) throw new InvalidRequestError(`Tool '${name}' has not been passed in \`tools\`.`, 'tool_choice');
    return { kind: 'named', name };
  }
  throw new InvalidRequestError(`tool_choice must be "none", "auto", "required" or a named function, got ${JSON.stringify(choice)}`, 'tool_choice');
}

const OBJECT = { type: 'object' };

/** The grammar of a "required" or named tool choice (vLLM's _get_json_schema_from_tool). */
export function toolGrammar(req: ChatCompletionRequest, mode: ToolMode): StructuredOutputsParams | null {
  const tools = functionsOf(req);
  if (mode.kind === 'named') return { json: tools.find((t) => t.name === mode.name)!.parameters ?? OBJECT };
  if (mode.kind !== 'required') return null;
  const items = tools.map((t) => ({
    type: 'object',
    properties: { name: { type: 'string', enum: [t.name] }, parameters: t.parameters ?? OBJECT },
    required: ['name', 'parameters'],
  }));
  return { json: { type: 'array', minItems: 1, ...(req.parallel_tool_calls === false ? { maxItems: 1 } : {}), items: { anyOf: items } } };
}

/** One choice's message parts. */
export interface ChatParts {
  content: string | null;
  reasoning: string | null;
  toolCalls: ToolCall[];
  /** finish_reason 'tool_calls' (auto or required calls were made). */
  toolsCalled: boolean;
}

export interface ChatDelta {
  content?: string;
  reasoning_content?: string;
  reasoning?: string;
  tool_calls?: DeltaToolCall[];
}

/** What one request tells the reasoning parser. */
export interface ReasoningContext {
  /** chat_template_kwargs.enable_thinking (default true). */
  thinkingEnabled?: boolean;
  /** The prompt already closed the think block (vLLM's prompt_is_reasoning_end): the output is all content. */
  promptEndsReasoning?: boolean;
}

/** Splits one choice's output; one per choice (the streaming state lives here). */
export class ChatOutputParser {
  private readonly reasoning: ReasoningParser | null;
  private readonly tools: ToolParser | null;
  private contentSoFar = '';
  private namedSent = 0;
  private readonly namedId = randomToolCallId();

  constructor(private readonly mode: ToolMode, opts: ToolOptions, ctx: ReasoningContext = {}) {
    this.reasoning = opts.reasoningParser && !ctx.promptEndsReasoning
      ? reasoningParserFor(opts.reasoningParser, { thinkingEnabled: ctx.thinkingEnabled })
      : null;
    this.tools = mode.kind === 'auto' ? toolParserFor(opts.toolCallParser!) : mode.kind === 'required' ? new RequiredToolCallsParser() : null;
  }

  whole(text: string): ChatParts {
    const split = this.reasoning ? this.reasoning.extract(text) : { reasoning: null, content: text };
    const body = split.content ?? '';
    if (this.mode.kind === 'named') {
      return { content: null, reasoning: split.reasoning, toolsCalled: false,
        toolCalls: [{ id: this.namedId, type: 'function', function: { name: this.mode.name, arguments: body } }] };
    }
    if (this.tools) {
      const t = this.tools.extractToolCalls(body);
      if (t.toolsCalled) return { content: t.content, reasoning: split.reasoning, toolCalls: t.toolCalls, toolsCalled: true };
    }
    return { content: split.content, reasoning: split.reasoning, toolCalls: [], toolsCalled: false };
  }

  /** The delta for the output so far (`text` is the whole of it); null when nothing is new. */
  streamed(text: string, final: boolean): ChatDelta | null {
    const delta: ChatDelta = {};
    let fresh = text.slice(this.seen);
    this.seen = text.length;
    if (this.reasoning) {
      const d = this.reasoning.extractStreaming(text, final);
      if (d?.reasoning) delta.reasoning_content = delta.reasoning = d.reasoning;
      fresh = d?.content ?? '';
    }
    this.contentSoFar += fresh;
    if (this.mode.kind === 'named') {
      const args = this.contentSoFar.slice(this.namedSent);
      if (this.namedSent === 0 && (args.length > 0 || final)) {
        delta.tool_calls = [{ index: 0, id: this.namedId, type: 'function', function: { name: this.mode.name, arguments: args } }];
      } else if (args.length > 0) delta.tool_calls = [{ index: 0, function: { arguments: args } }];
      this.namedSent = this.contentSoFar.length || this.namedSent;
    } else if (this.tools) {
      const d = this.tools.extractToolCallsStreaming(this.contentSoFar, final);
      if (d?.content) delta.content = d.content;
      if (d?.toolCalls) delta.tool_calls = d.toolCalls;
    } else if (fresh.length > 0) delta.content = fresh;
    return Object.keys(delta).length > 0 ? delta : null;
  }

  private seen = 0;

  /** Whether the stream made auto / required tool calls (its finish_reason is then 'tool_calls'). */
  get streamedToolCalls(): boolean {
    return (this.tools?.numStreamedCalls ?? 0) > 0;
  }
}

/** vLLM's templates see an assistant message's tool-call arguments as an object, not JSON text. */
export function parseToolCallArguments<T extends { role: string; tool_calls?: unknown }>(m: T): T {
  if (m.role !== 'assistant' || !Array.isArray(m.tool_calls)) return m;
  const calls = m.tool_calls.map((c: { function?: { arguments?: unknown } }) => {
    const a = c.function?.arguments;
    if (typeof a !== 'string') return c;
    try {
      return { ...c, function: { ...c.function, arguments: JSON.parse(a) as unknown } };
    } catch {
      return c;
    }
  });
  return { ...m, tool_calls: calls };
}
