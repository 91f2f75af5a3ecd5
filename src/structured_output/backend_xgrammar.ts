// xgrammar behind vLLM's StructuredOutputBackend / StructuredOutputGrammar roles:
// the backend compiles a GrammarSpec for one tokenizer; a grammar is one request's
// matcher (accept tokens, fill its bitmask row, roll back, terminated?).
import { unsupportedJsonSchemaFeatures } from './json_schema_check.js';
import { rewriteForXgrammar } from './json_schema_rewrite.js';
import { choiceGrammar, type GrammarSpec, StructuredOutputsError } from './params.js';
import type { TokenizerVocab } from './vocab.js';
import { type Deletable, type XgBinding, type XgCompilerHandle, type XgMatcherHandle, xgBinding, xgCall } from './xgrammar_loader.js';

/** 32 token ids per int32 word. */
export function bitmaskWidth(vocabSize: number): number {
  return Math.ceil(vocabSize / 32);
}

/** xgrammar's structural tag for a regex (the web build has no regex compile of its own). */
function regexTag(pattern: string): string {
  return JSON.stringify({ type: 'structural_tag', format: { type: 'regex', pattern } });
}

/**
 * Builds (without a tokenizer) the grammar of `spec`: the front end's validation,
 * so a bad schema, regex or EBNF is a 400 before the request reaches the engine.
 * The caller deletes the result.
 */
export function buildGrammar(spec: GrammarSpec, b: XgBinding = xgBinding()): Deletable {
  switch (spec.kind) {
    case 'json': {
      const bad = unsupportedJsonSchemaFeatures(JSON.parse(spec.spec));
      if (bad.length > 0) {
        throw new StructuredOutputsError(`The provided JSON schema contains features not supported by xgrammar: ${bad.join(', ')}`);
      }
      return compileError(() => new b.Grammar.FromJSONSchema(xgrammarSchema(spec.spec), spec.anyWhitespace, undefined, undefined, true, undefined, false));
    }
    case 'json_object':
      return compileError(() => new b.Grammar.BuiltinJSONGrammar());
    case 'regex':
      return compileError(() => b.Grammar.FromStructuralTag(regexTag(spec.spec)));
    case 'structural_tag':
      return compileError(() => b.Grammar.FromStructuralTag(spec.spec));
    case 'choice':
      return compileError(() => new b.Grammar.FromEBNF(choiceGrammar(JSON.parse(spec.spec) as string[]), 'root'));
    case 'grammar':
      return compileError(() => new b.Grammar.FromEBNF(spec.spec, 'root'));
  }
}

/** The schema text xgrammar gets (see json_schema_rewrite.ts). */
function xgrammarSchema(text: string): string {
  return JSON.stringify(rewriteForXgrammar(JSON.parse(text)));
}

function compileError<T>(fn: () => T): T {
  try {
    return xgCall(fn);
  } catch (e) {
    throw new StructuredOutputsError(`Invalid grammar specification: ${(e as Error).message}`);
  }
}

/** A compiled grammar: the per-tokenizer token-mask cache that matchers share. */
export interface CompiledGrammar {
  readonly handle: Deletable;
  readonly spec: GrammarSpec;
}

export class XgrammarBackend {
  private readonly compiler: XgCompilerHandle;
  private readonly tokenizerInfo: Deletable;

  /**
   * @param vocabSize the logits' width (the model's vocab, at least the tokenizer's):
   *   ids past the tokenizer's are never allowed.
   */
  constructor(vocab: TokenizerVocab, readonly vocabSize: number, stopTokenIds: readonly number[], private readonly b: XgBinding = xgBinding()) {
    const encoded = b.vecStringFromJSArray(vocab.encoded);
    const stop = b.vecIntFromJSArray([...stopTokenIds]);
    this.tokenizerInfo = xgCall(() => new b.TokenizerInfo(encoded, vocab.vocabType, vocabSize, stop, vocab.prependSpace));
    (encoded as Deletable).delete();
    (stop as Deletable).delete();
    // NOTE: one thread: the WebAssembly build has none. Its cache keeps compiled JSON schemas.
    this.compiler = new b.GrammarCompiler(this.tokenizerInfo, 1, true);
  }

  /** Compiles synchronously (tens to hundreds of ms for a 128k vocabulary). */
  compile(spec: GrammarSpec): CompiledGrammar {
    const c = this.compiler;
    let handle: Deletable;
    if (spec.kind === 'json') {
      handle = compileError(() => c.CompileJSONSchema(xgrammarSchema(spec.spec), spec.anyWhitespace, undefined, undefined, true, undefined));
    } else if (spec.kind === 'json_object') {
      handle = compileError(() => c.CompileBuiltinJSONGrammar());
    } else if (spec.kind === 'regex' || spec.kind === 'structural_tag') {
      const json = spec.kind === 'regex' ? regexTag(spec.spec) : spec.spec;
      handle = compileError(() => c.CompileStructuralTag(json));
    } else {
      const g = buildGrammar(spec, this.b);
      try {
        handle = compileError(() => c.CompileGrammar(g));
      } finally {
        g.delete();
      }
    }
    return { handle, spec };
  }

  /** A new matcher for one request; `stopTokenIds` (its EOS ids) end the grammar. */
  matcher(compiled: CompiledGrammar, stopTokenIds: readonly number[]): XgrammarGrammar {
    const stop = stopTokenIds.length > 0 ? this.b.vecIntFromJSArray([...stopTokenIds]) : undefined;
    const m = xgCall(() => new this.b.GrammarMatcher(compiled.handle, stop, false, -1));
    (stop as Deletable | undefined)?.delete();
    return new XgrammarGrammar(m, this.vocabSize, this.b);
  }

  dispose(): void {
    this.compiler.delete();
    this.tokenizerInfo.delete();
  }
}

/** One request's grammar state. */
export class XgrammarGrammar {
  /** Tokens accepted so far (what rollBack can undo). */
  numProcessedTokens = 0;
  private terminated = false;

  constructor(private readonly m: XgMatcherHandle, readonly vocabSize: number, private readonly b: XgBinding) {}

  /** Advances over `tokens`; false (and no further state change) at the first one the grammar rejects. */
  acceptTokens(tokens: Iterable<number>): boolean {
    for (const t of tokens) {
      if (this.terminated) return false;
      if (!this.m.AcceptToken(t, false)) return false;
      this.numProcessedTokens++;
      this.terminated = this.m.IsTerminated();
    }
    return true;
  }

  /** Writes the allowed next tokens into row `row` of bitmask ([rows, ceil(vocab/32)] int32, bit set = allowed). */
  fillBitmask(bitmask: Int32Array, row: number): void {
    const W = bitmaskWidth(this.vocabSize);
    const vec = this.m.GetNextTokenBitmask(this.vocabSize);
    try {
      bitmask.set(this.b.vecIntToView(vec).subarray(0, W), row * W);
    } finally {
      vec.delete();
    }
  }

  /** Undoes the last `n` accepted tokens (a recompute that dropped them). */
  rollBack(n: number): void {
    if (n <= 0) return;
    if (n > this.numProcessedTokens) throw new RangeError(`grammar rollback of ${n} tokens, only ${this.numProcessedTokens} accepted`);
    this.m.Rollback(n);
    this.numProcessedTokens -= n;
    this.terminated = this.m.IsTerminated();
  }

  isTerminated(): boolean {
    return this.terminated;
  }

  reset(): void {
    this.m.Reset();
    this.numProcessedTokens = 0;
    this.terminated = false;
  }

  dispose(): void {
    this.m.delete();
  }
}
