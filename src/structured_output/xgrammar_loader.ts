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
}

export type XgModule = typeof XG & { getBinding(): Promise<XgBinding> };

let loaded: XgModule | null = null;

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
  const mod: { exports: Record<string, unknown> } = { exports: {} };
  const fn = new Function('exports', 'module', 'require', '__filename', '__dirname', src);
  fn.call(mod.exports, mod.exports, mod, require, file, dirname(file));
  loaded = mod.exports as unknown as XgModule;
  return loaded;
}
