// Loads @mlc-ai/web-xgrammar (xgrammar's C++ built to WebAssembly) in Node.
// NOTE: its lib/index.js is a UMD bundle in a package declared "type": "module",
// so `import` runs it as ESM where `exports` is undefined and the bundle finds
// no way to export. We read the file and evaluate it as CommonJS instead, and
// also hand back the embind module ("binding") so that the hot path can read a
// bitmask vector into our own buffer without the package's async wrappers.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type * as XG from '@mlc-ai/web-xgrammar';

const require = createRequire(import.meta.url);

/** The embind vector<int32> handle that GetNextTokenBitmask returns. */
export interface VectorInt {
  size(): number;
  get(i: number): number;
  delete(): void;
}

/** The part of xgrammar's embind module the hot path uses. */
export interface XgBinding {
  vecIntToView(v: VectorInt): Int32Array;
  vecIntFromJSArray(a: number[]): unknown;
  vecStringFromJSArray(a: string[]): unknown;
  Grammar: {
    FromEBNF: new (ebnf: string, root: string) => Deletable;
    FromJSONSchema: new (...args: unknown[]) => Deletable;
    FromStructuralTag(json: string): Deletable;
    BuiltinJSONGrammar: new () => Deletable;
  };
  TokenizerInfo: new (vocab: unknown, vocabType: string, vocabSize: number | undefined, stop: unknown, prependSpace: boolean) => Deletable;
  GrammarCompiler: new (tokenizerInfo: unknown, maxThreads: number, cache: boolean) => XgCompilerHandle;
  GrammarMatcher: new (compiled: unknown, stop: unknown, terminateWithoutStop: boolean, maxRollback: number) => XgMatcherHandle;
}

export interface Deletable {
  delete(): void;
}

export interface XgCompilerHandle extends Deletable {
  CompileJSONSchema(schema: string, anyWs: boolean, indent: number | undefined, sep: unknown, strict: boolean, maxWs: number | undefined): Deletable;
  CompileBuiltinJSONGrammar(): Deletable;
  CompileGrammar(grammar: Deletable): Deletable;
  CompileStructuralTag(json: string): Deletable;
}

export interface XgMatcherHandle extends Deletable {
  AcceptToken(id: number, verbose: boolean): boolean;
  AcceptString(s: string, verbose: boolean): boolean;
  GetNextTokenBitmask(vocabSize: number): VectorInt;
  IsTerminated(): boolean;
  Reset(): void;
  Rollback(n: number): void;
}

export type XgModule = typeof XG & { getBinding(): Promise<XgBinding>; lastError?: string };

let loaded: XgModule | null = null;
let binding: XgBinding | null = null;

/** Instantiates the WebAssembly module once (about 0.1-0.3 s); then xgBinding() works synchronously. */
export async function initXgrammar(): Promise<XgBinding> {
  binding ??= await loadXgrammar().getBinding();
  return binding;
}

/** The embind module; initXgrammar() must have finished. */
export function xgBinding(): XgBinding {
  if (binding === null) throw new Error('xgrammar is not initialized: await initXgrammar() when the engine starts');
  return binding;
}

/**
 * Runs one xgrammar call; a failure comes back as an Error with xgrammar's own
 * message (e.g. "EBNF parser error at line 1, column 16: Expect element").
 */
export function xgCall<T>(fn: () => T): T {
  const mod = loadXgrammar();
  mod.lastError = undefined;
  try {
    return fn();
  } catch (e) {
    const printed = (mod as { lastError?: string }).lastError;
    const fatal = printed?.match(/\[FATAL\] [^:]*:\d+: (.*)$/s)?.[1];
    throw new Error(fatal ?? printed ?? (e instanceof Error ? e.message : String(e)));
  }
}

export function loadXgrammar(): XgModule {
  if (loaded !== null) return loaded;
  const file = require.resolve('@mlc-ai/web-xgrammar');
  let src = readFileSync(file, 'utf8');
  const anchor = 'exports.default = index;';
  if (!src.includes(anchor)) throw new Error(`${file}: unexpected bundle layout (no "${anchor}"); pin @mlc-ai/web-xgrammar 0.1.27`);
  // Exposes the lazily initialized binding; awaiting a Grammar call first initializes it.
  src = src.replace(
    anchor,
    `${anchor}\n  exports.getBinding = async () => { await Grammar.builtinJSONGrammar().then((g) => g.dispose()); return binding; };`,
  );
  // xgrammar reports a bad grammar by printing "[FATAL] file:line: message" and aborting
  // the call; we keep that line as the error's message instead of letting it reach stderr.
  const init = 'binding = await Module();';
  if (!src.includes(init)) throw new Error(`${file}: unexpected bundle layout (no "${init}")`);
  src = src.replace(init, 'const keep = (t) => { if (String(t).includes("[FATAL]")) exports.lastError = String(t); }; binding = await Module({ print: keep, printErr: keep });');
  const mod: { exports: Record<string, unknown> } = { exports: {} };
  const fn = new Function('exports', 'module', 'require', '__filename', '__dirname', src);
  fn.call(mod.exports, mod.exports, mod, require, file, dirname(file));
  loaded = mod.exports as unknown as XgModule;
  return loaded;
}
