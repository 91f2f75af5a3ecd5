// GET /static/...: the scripts, styles and images of the web pages (static/ in the
// package) and the browser libraries they use, served from the package's own
// node_modules (never a CDN): marked (markdown), DOMPurify (sanitizes its HTML) and
// highlight.js (code blocks). Only files of a known kind under static/, and only the
// library files listed in VENDOR, are served; everything else is a 404.
import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';

export const STATIC_PREFIX = '/static/';

// NOTE: three levels up from src/entrypoints/openai/ (tsx) or dist/entrypoints/openai/
// (built) is the package root, where static/ is shipped.
const STATIC_DIR = fileURLToPath(new URL('../../../static/', import.meta.url));

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** highlight.js languages the pages register (each an ES module of its own). */
export const HIGHLIGHT_LANGUAGES = [
  'bash', 'c', 'cpp', 'csharp', 'css', 'diff', 'go', 'java', 'javascript', 'json', 'markdown', 'python',
  'rust', 'shell', 'sql', 'typescript', 'xml', 'yaml',
];

interface VendorFile {
  pkg: string;
  file: string;
  /** A CommonJS file (module.exports = x) served as an ES module exporting x. */
  cjs?: boolean;
}

/** URL under /static/vendor/ -> the file in node_modules. */
const VENDOR: Record<string, VendorFile> = {
  'marked.js': { pkg: 'marked', file: 'lib/marked.esm.js' },
  'purify.js': { pkg: 'dompurify', file: 'dist/purify.es.mjs' },
  // NOTE: highlight.js ships its core as CommonJS only (es/core.js re-exports lib/core.js).
  'highlight.js': { pkg: 'highlight.js', file: 'lib/core.js', cjs: true },
  'highlight-light.css': { pkg: 'highlight.js', file: 'styles/github.css' },
  'highlight-dark.css': { pkg: 'highlight.js', file: 'styles/github-dark.css' },
  ...Object.fromEntries(HIGHLIGHT_LANGUAGES.map((l) => [`hljs/${l}.js`, { pkg: 'highlight.js', file: `es/languages/${l}.js` }])),
};

const require = createRequire(import.meta.url);

/** The folder of an installed package (found from its entry point: not every package exports package.json). */
function packageDir(pkg: string): string {
  let dir = dirname(require.resolve(pkg));
  while (!existsSync(join(dir, 'package.json')) || (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name !== pkg) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json of ${pkg} above ${require.resolve(pkg)}`);
    dir = up;
  }
  return dir;
}

interface Asset {
  body: Buffer;
  type: string;
}

// NOTE: only what exists is kept, so unknown paths cannot grow the map.
const cache = new Map<string, Asset>();

function readVendor(v: VendorFile): Buffer {
  let text = readFileSync(join(packageDir(v.pkg), v.file), 'utf8');
  // the source maps are not served
  text = text.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n');
  if (v.cjs) text = `const module = { exports: {} };\n${text}\nexport default module.exports;\n`;
  return Buffer.from(text, 'utf8');
}

/** The asset at `rel` (the path after /static/), or null when there is none to serve. */
export function staticAsset(rel: string): Asset | null {
  const hit = cache.get(rel);
  if (hit !== undefined) return hit;
  let asset: Asset | null = null;
  const type = TYPES[extname(rel)];
  if (rel.startsWith('vendor/')) {
    const v = VENDOR[rel.slice('vendor/'.length)];
    if (v) asset = { body: readVendor(v), type: TYPES[extname(v.file)] ?? TYPES['.js'] };
  } else if (type !== undefined && rel.split('/').every((seg) => /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/.test(seg))) {
    const path = join(STATIC_DIR, rel);
    if (existsSync(path)) asset = { body: readFileSync(path), type };
  }
  if (asset !== null) cache.set(rel, asset);
  return asset;
}

/** GET (or HEAD) /static/<path>: the asset, or 404 (JSON, as every other unknown path). */
export function serveStatic({ req, res, path }: { req: IncomingMessage; res: ServerResponse; path: string }): boolean {
  const asset = staticAsset(path.slice(STATIC_PREFIX.length));
  if (asset === null) return false;
  res.writeHead(200, {
    'content-type': asset.type,
    'content-length': asset.body.length,
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-cache',
  });
  res.end(req.method === 'HEAD' ? undefined : asset.body);
  return true;
}
