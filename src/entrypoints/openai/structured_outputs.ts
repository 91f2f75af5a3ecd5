// The request fields that ask for structured outputs, folded into one
// StructuredOutputsParams: vLLM's `structured_outputs`, its older `guided_*` fields,
// and OpenAI's `response_format` (json_object, json_schema, vLLM's structural_tag).
import { InvalidRequestError } from '../../errors.js';
import { type StructuredOutputsParams, structuredOutputsFromWire } from '../../structured_output/params.js';
import type { ChatCompletionRequest, CompletionRequest } from './protocol.js';

type Req = CompletionRequest | ChatCompletionRequest;

function fromGuided(req: Req): StructuredOutputsParams | null {
  const p: StructuredOutputsParams = {};
  if (req.guided_json !== null && req.guided_json !== undefined) p.json = req.guided_json;
  if (req.guided_regex !== null && req.guided_regex !== undefined) p.regex = req.guided_regex;
  if (req.guided_choice !== null && req.guided_choice !== undefined) p.choice = req.guided_choice;
  if (req.guided_grammar !== null && req.guided_grammar !== undefined) p.grammar = req.guided_grammar;
  if (req.structural_tag !== null && req.structural_tag !== undefined) p.structuralTag = req.structural_tag;
  if (Object.keys(p).length === 0) return null;
  if (req.guided_whitespace_pattern) p.whitespacePattern = req.guided_whitespace_pattern;
  return p;
}

function fromResponseFormat(req: Req): StructuredOutputsParams | null {
  const rf = req.response_format;
  if (!rf || rf.type === 'text') return null;
  switch (rf.type) {
    case 'json_object':
      return { jsonObject: true };
    case 'json_schema': {
      const js = rf.json_schema;
      if (!js || js.schema === undefined || js.schema === null) {
        throw new InvalidRequestError('response_format of type json_schema needs json_schema.schema', 'response_format.json_schema');
      }
      return { json: js.schema as Record<string, unknown> | string };
    }
    case 'structural_tag':
      return { structuralTag: { ...rf, type: 'structural_tag' } };
    default:
      throw new InvalidRequestError(
        `response_format type '${rf.type}' is not one of 'text', 'json_object', 'json_schema', 'structural_tag'`,
        'response_format.type',
      );
  }
}

/** The request's structured-output constraint, or null for free text. */
export function structuredOutputsOfRequest(req: Req): StructuredOutputsParams | null {
  const sources: [string, StructuredOutputsParams | null][] = [
    ['structured_outputs', req.structured_outputs ? structuredOutputsFromWire(req.structured_outputs) : null],
    ['guided_*', fromGuided(req)],
    ['response_format', fromResponseFormat(req)],
  ];
  const set = sources.filter(([, p]) => p !== null);
  if (set.length > 1) {
    throw new InvalidRequestError(
      `Only one of ${set.map(([n]) => n).join(', ')} may ask for structured outputs in one request`,
      set[1]![0] === 'guided_*' ? 'guided_json' : set[1]![0],
    );
  }
  return set[0]?.[1] ?? null;
}
