// Tool parsers (vLLM's --tool-call-parser): find the tool calls in a model's output.
// Each parser reads the text so far into content plus (partial) calls; whole outputs
// become OpenAI tool_calls, streams get OpenAI's deltas (the name first, with the
// call's id, then fragments of the arguments' JSON text). Both carry the arguments
// as the model wrote them, so the fragments of a stream join to the full answer.
import { randomBytes } from 'node:crypto';
import type { PartialCall } from './json_scan.js';

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface DeltaToolCall {
  index: number;
  id?: string;
  type?: 'function';
  function: { name?: string; arguments: string };
}

export interface ExtractedToolCalls {
  toolsCalled: boolean;
  toolCalls: ToolCall[];
  content: string | null;
}

export interface ToolDelta {
  content?: string;
  toolCalls?: DeltaToolCall[];
}

/** What a parser reads from the text so far. */
export interface ParsedOutput {
  /** Text that is not a tool call (held back while it could still start one). */
  content: string;
  calls: PartialCall[];
}

export function randomToolCallId(): string {
  return `chatcmpl-tool-${randomBytes(16).toString('hex')}`;
}

export abstract class ToolParser {
  private sentContent = 0;
  private readonly sent: { id: string; named: boolean; args: number }[] = [];

  /** Reads `text`; `final` when no more text will come (no marker can still be completed). */
  abstract parse(text: string, final: boolean): ParsedOutput;

  protected newId(): string {
    return randomToolCallId();
  }

  /** A complete output: its tool calls, or (when none parse) all of it as content. */
  extractToolCalls(text: string): ExtractedToolCalls {
    const { content, calls } = this.parse(text, true);
    const valid = calls.length > 0 && calls.every((c) => c.complete && c.name !== null && isJson(c.args));
    if (!valid) return { toolsCalled: false, toolCalls: [], content: text };
    return {
      toolsCalled: true,
      toolCalls: calls.map((c) => ({ id: this.newId(), type: 'function', function: { name: c.name!, arguments: c.args.trim() } })),
      content: content.trim().length > 0 ? content : null,
    };
  }

  /** What is new in `currentText` (the whole output so far) since the last call; null when nothing. */
  extractToolCallsStreaming(currentText: string, final = false): ToolDelta | null {
    const { content, calls } = this.parse(currentText, final);
    const delta: ToolDelta = {};
    if (content.length > this.sentContent) delta.content = content.slice(this.sentContent);
    this.sentContent = Math.max(this.sentContent, content.length);
    const toolCalls: DeltaToolCall[] = [];
    calls.forEach((c, index) => {
      if (c.name === null) return;
      let s = this.sent[index];
      if (s === undefined) {
        s = this.sent[index] = { id: this.newId(), named: false, args: 0 };
      }
      const args = c.argsComplete ? c.args.trimEnd() : c.args;
      const fresh = args.length > s.args ? args.slice(s.args) : '';
      if (!s.named) {
        // OpenAI's first delta of a call: its id, type and name (and the arguments so far).
        s.named = true;
        s.args = args.length;
        toolCalls.push({ index, id: s.id, type: 'function', function: { name: c.name, arguments: args } });
      } else if (fresh.length > 0) {
        s.args = args.length;
        toolCalls.push({ index, function: { arguments: fresh } });
      }
    });
    if (toolCalls.length > 0) delta.toolCalls = toolCalls;
    return delta.content !== undefined || delta.toolCalls !== undefined ? delta : null;
  }

  /** Tool calls sent so far in the stream (for finish_reason "tool_calls"). */
  get numStreamedCalls(): number {
    return this.sent.length;
  }
}

function isJson(s: string): boolean {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}
