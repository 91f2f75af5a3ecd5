// Front-end check of a request's structured outputs (vLLM's validate_xgrammar_grammar):
// the grammar is built without the tokenizer, so an unsupported schema, a bad regex or
// EBNF is a 400 before the request reaches the engine core.
import { buildGrammar } from './backend_xgrammar.js';
import { grammarSpecOf, type StructuredOutputsParams } from './params.js';

const MAX_REMEMBERED = 512;
/** Specs that built fine recently (insertion order = age). */
const valid = new Map<string, true>();

/** Throws StructuredOutputsError (400) when `p` cannot be compiled. */
export function validateStructuredOutputs(p: StructuredOutputsParams): void {
  const spec = grammarSpecOf(p);
  const key = `${spec.kind}\u0000${spec.anyWhitespace ? 1 : 0}\u0000${spec.spec}`;
  if (valid.has(key)) return;
  buildGrammar(spec).delete();
  valid.set(key, true);
  if (valid.size > MAX_REMEMBERED) valid.delete(valid.keys().next().value!);
}
