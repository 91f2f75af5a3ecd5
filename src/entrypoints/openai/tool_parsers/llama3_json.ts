// llama3_json (Llama 3.1 / 3.2 JSON tool calls): the whole output is one or more
// `{"name": ..., "parameters": {...}}` objects separated by `;`, optionally after
// `<|python_tag|>`; any other output is content.
import { readCallObject, scanJsonValue, type PartialCall } from './json_scan.js';
import { type ParsedOutput, ToolParser } from './tool_parser.js';

const PYTHON_TAG = '<|python_tag|>';

export class Llama3JsonToolParser extends ToolParser {
  parse(text: string, final: boolean): ParsedOutput {
    let k = 0;
    while (k < text.length && /\s/.test(text[k]!)) k++;
    if (text.startsWith(PYTHON_TAG, k)) k += PYTHON_TAG.length;
    else if (!final && PYTHON_TAG.startsWith(text.slice(k)) ) return { content: '', calls: [] };
    while (k < text.length && /\s/.test(text[k]!)) k++;
    if (k >= text.length) return { content: final ? text : '', calls: [] };
    if (text[k] !== '{') return { content: text, calls: [] };
    const calls: PartialCall[] = [];
    for (;;) {
      const end = scanJsonValue(text, k);
      calls.push(readCallObject(end < 0 ? text.slice(k) : text.slice(k, end)));
      if (end < 0) break;
      k = end;
      while (k < text.length && /[\s;]/.test(text[k]!)) k++;
      if (k >= text.length || text[k] !== '{') break;
    }
    return { content: '', calls };
  }
}
