// vLLM's StructuredOutputsParams: exactly one constraint per request (json, regex,
// choice, grammar, json_object or structural_tag), plus the flags vLLM accepts with it.
import { VllmError } from '../errors.js';

export interface StructuredOutputsParams {
  /** A JSON schema (object or its JSON text). */
  json?: Record<string, unknown> | string | null;
  regex?: string | null;
  choice?: string[] | null;
  /** An EBNF grammar (xgrammar's GBNF dialect, root rule `root`). */
  grammar?: string | null;
  /** Any JSON value (OpenAI's response_format json_object). */
  jsonObject?: boolean | null;
  /** xgrammar's structural tag (object or JSON text). */
  structuralTag?: Record<string, unknown> | string | null;
  disableAnyWhitespace?: boolean;
  disableAdditionalProperties?: boolean;
  /** vLLM's whitespace_pattern: accepted for compatibility, not supported by xgrammar. */
  whitespacePattern?: string | null;
}

export type StructuredOutputKind = 'json' | 'regex' | 'choice' | 'grammar' | 'json_object' | 'structural_tag';

/** What a grammar is compiled from: the kind and its canonical text (the compile cache's key with the tokenizer). */
export interface GrammarSpec {
  kind: StructuredOutputKind;
  spec: string;
  anyWhitespace: boolean;
}

export class StructuredOutputsError extends VllmError {
  constructor(message: string, param = 'structured_outputs') {
    super(message, { type: 'BadRequestError', param, status: 400 });
  }
}

const KIND_FIELDS: [keyof StructuredOutputsParams, StructuredOutputKind][] = [
  ['json', 'json'],
  ['regex', 'regex'],
  ['choice', 'choice'],
  ['grammar', 'grammar'],
  ['jsonObject', 'json_object'],
  ['structuralTag', 'structural_tag'],
];

/** Escapes a literal for an EBNF string. */
export function ebnfLiteral(s: string): string {
  return JSON.stringify(s);
}

/** The one constraint of `p` as a GrammarSpec; a 400 when none or several are set, or a field has the wrong type. */
export function grammarSpecOf(p: StructuredOutputsParams): GrammarSpec {
  const set = KIND_FIELDS.filter(([f]) => p[f] !== undefined && p[f] !== null && p[f] !== false);
  if (set.length !== 1) {
    const names = set.map(([, k]) => k).join(', ');
    throw new StructuredOutputsError(
      set.length === 0
        ? 'You must use one kind of structured outputs constraint but none are specified'
        : `You can only use one kind of structured outputs constraint but multiple are specified: ${names}`,
    );
  }
  const [field, kind] = set[0]!;
  const value = p[field];
  const anyWhitespace = p.disableAnyWhitespace !== true;
  switch (kind) {
    case 'json':
    case 'structural_tag': {
      if (typeof value === 'string') {
        try {
          JSON.parse(value);
        } catch (e) {
          throw new StructuredOutputsError(`${kind} is not valid JSON: ${(e as Error).message}`);
        }
        return { kind, spec: value, anyWhitespace };
      }
      if (typeof value !== 'object' || Array.isArray(value)) throw new StructuredOutputsError(`${kind} must be a JSON object`);
      return { kind, spec: JSON.stringify(value), anyWhitespace };
    }
    case 'regex':
    case 'grammar':
      if (typeof value !== 'string' || value.length === 0) throw new StructuredOutputsError(`${kind} must be a non-empty string`);
      return { kind, spec: value, anyWhitespace };
    case 'choice': {
      if (!Array.isArray(value) || value.length === 0 || !value.every((c) => typeof c === 'string')) {
        throw new StructuredOutputsError('choice must be a non-empty list of strings');
      }
      // NOTE: as vLLM, a choice is a grammar of its alternatives (matched as literals).
      return { kind, spec: JSON.stringify(value), anyWhitespace };
    }
    case 'json_object':
      if (value !== true) throw new StructuredOutputsError('json_object must be true');
      return { kind, spec: '', anyWhitespace };
  }
}

/** The EBNF of a choice: its alternatives as literals. */
export function choiceGrammar(choices: readonly string[]): string {
  return `root ::= ${choices.map(ebnfLiteral).join(' | ')}`;
}

/** Reads vLLM's snake_case wire names (structured_outputs) into StructuredOutputsParams. */
export function structuredOutputsFromWire(o: Record<string, unknown>): StructuredOutputsParams {
  const out: StructuredOutputsParams = {};
  const map: Record<string, keyof StructuredOutputsParams> = {
    json: 'json',
    regex: 'regex',
    choice: 'choice',
    grammar: 'grammar',
    json_object: 'jsonObject',
    structural_tag: 'structuralTag',
    disable_any_whitespace: 'disableAnyWhitespace',
    disable_additional_properties: 'disableAdditionalProperties',
    whitespace_pattern: 'whitespacePattern',
  };
  for (const [k, v] of Object.entries(o)) {
    const f = map[k];
    if (f === undefined) {
      if (k === 'disable_fallback' || k === 'backend' || k === '_backend' || k === '_backend_was_auto') continue;
      throw new StructuredOutputsError(`unknown structured_outputs field ${JSON.stringify(k)}`, `structured_outputs.${k}`);
    }
    (out as Record<string, unknown>)[f] = v;
  }
  return out;
}
