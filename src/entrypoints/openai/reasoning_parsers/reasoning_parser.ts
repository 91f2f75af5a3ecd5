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
 * Qwen3: `<think>reasoning</think>content`. With enable_thinking false the template
 * closes the think block in the prompt, and the output is all content; a `</think>`
 * without `<think>` (the block opened by the prompt) ends the reasoning.
 */
export class Qwen3ReasoningParser extends ReasoningParser {
  extract(text: string): ReasoningSplit {
    const start = text.indexOf(this.startMarker);
    const end = text.indexOf(this.endMarker, start < 0 ? 0 : start);
    if (start < 0 && end < 0) return { reasoning: null, content: orNull(text) };
    const from = start < 0 ? 0 : start + this.startMarker.length;
    if (end < 0) return { reasoning: orNull(text.slice(from)), content: null };
    return { reasoning: orNull(text.slice(from, end)), content: orNull(text.slice(end + this.endMarker.length)) };
  }

  // NOTE: while streaming, text before any marker is content (the model did not open
  // a think block); a `</think>` with no `<think>` can then only end a block that was
  // streamed as content, so it is dropped from the content.
  protected splitSoFar(text: string): { reasoning: string; content: string } {
    const start = text.indexOf(this.startMarker);
    if (start < 0) return { reasoning: '', content: text.replace(this.endMarker, '') };
    const end = text.indexOf(this.endMarker, start);
    const from = start + this.startMarker.length;
    if (end < 0) return { reasoning: text.slice(from), content: text.slice(0, start) };
    return { reasoning: text.slice(from, end), content: text.slice(0, start) + text.slice(end + this.endMarker.length) };
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

export const REASONING_PARSERS: Record<string, () => ReasoningParser> = {
  qwen3: () => new Qwen3ReasoningParser(),
  deepseek_r1: () => new DeepSeekR1ReasoningParser(),
};

export function reasoningParserFor(name: string): ReasoningParser {
  const make = REASONING_PARSERS[name];
  if (!make) throw new Error(`unknown reasoning parser '${name}' (known: ${Object.keys(REASONING_PARSERS).join(', ')})`);
  return make();
}
