// Reasoning parsers (vLLM's --reasoning-parser): split a thinking model's output
// into reasoning_content and content. Streaming re-parses the text so far and
// sends what is new, holding back a tail that may be the start of a marker.

export interface ReasoningSplit {
  reasoning: string | null;
  content: string | null;
}

export interface ReasoningDelta {
  reasoning?: string;
  content?: string;
}

/** Length of the longest suffix of `text` that is a proper prefix of one of `markers`. */
export function partialMarkerTail(text: string, markers: readonly string[]): number {
  let best = 0;
  for (const m of markers) {
    for (let k = Math.min(m.length - 1, text.length); k > best; k--) {
      if (text.endsWith(m.slice(0, k))) {
        best = k;
        break;
      }
    }
  }
  return best;
}

export abstract class ReasoningParser {
  readonly startMarker = '<think>';
  readonly endMarker = '</think>';
  private sentReasoning = 0;
  private sentContent = 0;

  /** The split of a complete output. */
  abstract extract(text: string): ReasoningSplit;

  /** True when reasoning is still open at the end of `text` (what streaming sends as reasoning). */
  protected abstract splitSoFar(text: string): { reasoning: string; content: string };

  /** The new reasoning / content of `currentText` (the whole output so far); null when nothing new. */
  extractStreaming(currentText: string, final = false): ReasoningDelta | null {
    const hold = final ? 0 : partialMarkerTail(currentText, [this.startMarker, this.endMarker]);
    const { reasoning, content } = this.splitSoFar(currentText.slice(0, currentText.length - hold));
    const delta: ReasoningDelta = {};
    if (reasoning.length > this.sentReasoning) delta.reasoning = reasoning.slice(this.sentReasoning);
    if (content.length > this.sentContent) delta.content = content.slice(this.sentContent);
    this.sentReasoning = Math.max(this.sentReasoning, reasoning.length);
    this.sentContent = Math.max(this.sentContent, content.length);
    return delta.reasoning !== undefined || delta.content !== undefined ? delta : null;
  }
}

const orNull = (s: string): string | null => (s.length > 0 ? s : null);

/**
 * Qwen3 (vLLM's current parser): the text before `</think>` is reasoning and the text
 * after it content, whether the model wrote `<think>` itself (older templates; the
 * marker is dropped) or the template opened the block in the prompt (Qwen3.5 style,
 * where only `</think>` appears). An output with no `</think>` is reasoning cut short.
 * With `chat_template_kwargs.enable_thinking` false the output is all content, as
 * vLLM streams it (vLLM's non-streamed parse would still split at a stray `</think>`;
 * here both agree). A prompt whose think block is already closed makes the whole
 * output content before any parser sees it (ChatOutputParser).
 */
export class Qwen3ReasoningParser extends ReasoningParser {
  constructor(private readonly thinkingEnabled = true) {
    super();
  }

  extract(text: string): ReasoningSplit {
    const { reasoning, content } = this.splitSoFar(text);
    return { reasoning: orNull(reasoning), content: orNull(content) };
  }

  // NOTE: streamed text is reasoning until `</think>` (as vLLM streams it), so the
  // whole-output split is the same function.
  protected splitSoFar(text: string): { reasoning: string; content: string } {
    if (!this.thinkingEnabled) return { reasoning: '', content: text };
    const body = this.dropStart(text);
    const end = body.indexOf(this.endMarker);
    if (end < 0) return { reasoning: body, content: '' };
    return { reasoning: body.slice(0, end), content: body.slice(end + this.endMarker.length) };
  }

  /** The text without its first `<think>` (before any `</think>`). */
  private dropStart(text: string): string {
    const start = text.indexOf(this.startMarker);
    const end = text.indexOf(this.endMarker);
    if (start < 0 || (end >= 0 && end < start)) return text;
    return text.slice(0, start) + text.slice(start + this.startMarker.length);
  }
}

/** DeepSeek-R1: the template opens `<think>` in the prompt; everything up to `</think>` is reasoning. */
export class DeepSeekR1ReasoningParser extends ReasoningParser {
  extract(text: string): ReasoningSplit {
    const { reasoning, content } = this.splitSoFar(text);
    return { reasoning: orNull(reasoning), content: orNull(content) };
  }

  protected splitSoFar(text: string): { reasoning: string; content: string } {
    const body = text.startsWith(this.startMarker) ? text.slice(this.startMarker.length) : text;
    const end = body.indexOf(this.endMarker);
    if (end < 0) return { reasoning: body, content: '' };
    return { reasoning: body.slice(0, end), content: body.slice(end + this.endMarker.length) };
  }
}

/** What a request tells the parser: vLLM's chat_template_kwargs.enable_thinking (default true). */
export interface ReasoningRequestOptions {
  thinkingEnabled?: boolean;
}

export const REASONING_PARSERS: Record<string, (o: ReasoningRequestOptions) => ReasoningParser> = {
  qwen3: (o) => new Qwen3ReasoningParser(o.thinkingEnabled ?? true),
  deepseek_r1: () => new DeepSeekR1ReasoningParser(),
};

export function reasoningParserFor(name: string, opts: ReasoningRequestOptions = {}): ReasoningParser {
  const make = REASONING_PARSERS[name];
  if (!make) throw new Error(`unknown reasoning parser '${name}' (known: ${Object.keys(REASONING_PARSERS).join(', ')})`);
  return make(opts);
}
