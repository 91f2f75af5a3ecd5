// hermes (Qwen2.5 / Qwen3 / Hermes): `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`,
// one block per call; the text before the first block is the content.
import { partialMarkerTail } from '../reasoning_parsers/reasoning_parser.js';
import { readCallObject, scanJsonValue, type PartialCall } from './json_scan.js';
import { type ParsedOutput, ToolParser } from './tool_parser.js';

const START = '<tool_call>';
const END = '</tool_call>';

export class HermesToolParser extends ToolParser {
  parse(text: string, final: boolean): ParsedOutput {
    const first = text.indexOf(START);
    if (first < 0) {
      const hold = final ? 0 : partialMarkerTail(text, [START]);
      return { content: text.slice(0, text.length - hold), calls: [] };
    }
    const calls: PartialCall[] = [];
    let at = first;
    while (at >= 0) {
      let k = at + START.length;
      while (k < text.length && /\s/.test(text[k]!)) k++;
      if (k >= text.length || text[k] !== '{') break;
      const end = scanJsonValue(text, k);
      calls.push(readCallObject(end < 0 ? text.slice(k) : text.slice(k, end)));
      if (end < 0) break;
      const close = text.indexOf(END, end);
      at = text.indexOf(START, close < 0 ? end : close + END.length);
    }
    return { content: text.slice(0, first), calls };
  }
}
