// The tool parsers by --tool-call-parser name, and the parser of a tool_choice
// "required" answer (a JSON array that a grammar enforced).
import { HermesToolParser } from './hermes.js';
import { readCallArray } from './json_scan.js';
import { Llama3JsonToolParser } from './llama3_json.js';
import { MistralToolParser } from './mistral.js';
import { type ParsedOutput, ToolParser } from './tool_parser.js';

export const TOOL_PARSERS: Record<string, () => ToolParser> = {
  hermes: () => new HermesToolParser(),
  llama3_json: () => new Llama3JsonToolParser(),
  mistral: () => new MistralToolParser(),
};

export function toolParserFor(name: string): ToolParser {
  const make = TOOL_PARSERS[name];
  if (!make) throw new Error(`unknown tool call parser '${name}' (known: ${Object.keys(TOOL_PARSERS).join(', ')})`);
  return make();
}

/** tool_choice "required": the output is `[{"name": ..., "parameters": {...}}, ...]`. */
export class RequiredToolCallsParser extends ToolParser {
  parse(text: string): ParsedOutput {
    const k = text.search(/\S/);
    return { content: '', calls: k >= 0 && text[k] === '[' ? readCallArray(text, k) : [] };
  }
}

export { ToolParser } from './tool_parser.js';
export type { DeltaToolCall, ExtractedToolCalls, ToolCall, ToolDelta } from './tool_parser.js';
