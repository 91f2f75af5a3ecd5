// mistral: `[TOOL_CALLS]` then a JSON array of `{"name": ..., "arguments": {...}}`
// (tokenizer v3) or `name[ARGS]{...}` / `name{...}` per call (v11+); the text before
// `[TOOL_CALLS]` is the content. Mistral's call ids are 9 letters and digits.
import { randomBytes } from 'node:crypto';
import { partialMarkerTail } from '../reasoning_parsers/reasoning_parser.js';
import { readCallArray, scanJsonValue, type PartialCall } from './json_scan.js';
import { type ParsedOutput, ToolParser } from './tool_parser.js';

const MARKER = '[TOOL_CALLS]';
const ARGS = '[ARGS]';
const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

export class MistralToolParser extends ToolParser {
  protected override newId(): string {
    return Array.from(randomBytes(9), (b) => ALNUM[b % ALNUM.length]).join('');
  }

  parse(text: string, final: boolean): ParsedOutput {
    const at = text.indexOf(MARKER);
    if (at < 0) {
      const hold = final ? 0 : partialMarkerTail(text, [MARKER]);
      return { content: text.slice(0, text.length - hold), calls: [] };
    }
    const content = text.slice(0, at);
    let k = at + MARKER.length;
    while (k < text.length && /\s/.test(text[k]!)) k++;
    if (text[k] === '[') return { content, calls: readCallArray(text, k) };
    return { content, calls: this.namedCalls(text, k) };
  }

  /** `name[ARGS]{...}` or `name{...}`, repeated (each may follow another [TOOL_CALLS]). */
  private namedCalls(text: string, k: number): PartialCall[] {
    const calls: PartialCall[] = [];
    while (k < text.length) {
      const brace = text.indexOf('{', k);
      if (brace < 0) break;
      let name = text.slice(k, brace);
      if (name.endsWith(ARGS)) name = name.slice(0, -ARGS.length);
      name = name.trim();
      if (!/^[A-Za-z0-9_.-]+$/.test(name)) break;
      const end = scanJsonValue(text, brace);
      const args = end < 0 ? text.slice(brace).trimEnd() : text.slice(brace, end);
      calls.push({ name, args, argsComplete: end > 0, complete: end > 0 });
      if (end < 0) break;
      k = end;
      while (k < text.length && /\s/.test(text[k]!)) k++;
      if (text.startsWith(MARKER, k)) k += MARKER.length;
    }
    return calls;
  }
}
