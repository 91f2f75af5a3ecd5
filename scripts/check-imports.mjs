// Checks the shape of src/: no import cycle, no import from a lower layer up to a
// higher one, and no function longer than 80 lines in the folders that promise it.
// Reads every import (type-only ones too: a circle of types is still a circle) with
// the TypeScript parser. Prints what is wrong and exits 1; prints a summary and
// exits 0 when all holds. Usage: node scripts/check-imports.mjs [srcDir]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

const root = resolve(process.argv[2] ?? 'src');

/**
 * Top folders of src/ in two tiers: no lower folder may import a higher one.
 * '' is the files directly in src/ (errors, logger, sampling/pooling params,
 * outputs: records every layer shares), bar index.ts, the package's face.
 */
const LOWER = ['', 'config', 'native', 'distributed', 'tokenizer', 'core', 'attention', 'model_executor', 'worker', 'executor'];
const HIGHER = ['engine', 'metrics', 'entrypoints', 'index.ts'];
/** Folders whose functions must stay within MAX_FUNCTION_LINES. */
const SHORT_FUNCTIONS = ['core', 'engine', 'worker'];
const MAX_FUNCTION_LINES = 80;

function listFiles(dir, out = []) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) listFiles(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** The top folder of src/ a file belongs to ('' for a file directly in src/). */
function topOf(file) {
  const parts = relative(root, file).split(sep);
  if (parts.length === 1) return parts[0] === 'index.ts' ? 'index.ts' : '';
  return parts[0];
}

/** Relative module specifiers of a file, resolved to files under src/ ('./x.js' -> x.ts). */
function importsOf(file, sf) {
  const specs = [];
  const visit = (node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      specs.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])) {
      specs.push(node.arguments[0].text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      specs.push(node.argument.literal.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return specs
    .filter((s) => s.startsWith('.'))
    .map((s) => resolve(dirname(file), s.replace(/\.js$/, '.ts')))
    .map((p) => (p.endsWith('.ts') ? p : join(p, 'index.ts')));
}

/** Functions (declarations, methods, arrows, constructors, accessors) over the limit. */
function longFunctions(file, sf) {
  const out = [];
  const visit = (node) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const first = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const last = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = last - first + 1;
      if (lines > MAX_FUNCTION_LINES) {
        const name = node.name && 'text' in node.name ? node.name.text : '(anonymous)';
        out.push(`${relative(root, file)}:${first + 1} ${name} is ${lines} lines (max ${MAX_FUNCTION_LINES})`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

const files = listFiles(root);
const known = new Set(files);
const graph = new Map();
const problems = [];
let edges = 0;
for (const file of files) {
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const deps = [...new Set(importsOf(file, sf))];
  for (const d of deps) {
    if (!known.has(d)) problems.push(`${relative(root, file)} imports ${relative(root, d)}, which is not a file under src/`);
  }
  graph.set(file, deps.filter((d) => known.has(d)));
  edges += deps.length;
  const from = topOf(file);
  for (const d of deps) {
    const to = topOf(d);
    if (LOWER.includes(from) && HIGHER.includes(to)) {
      problems.push(`upward import: ${relative(root, file)} (${from || 'src/'}) imports ${relative(root, d)} (${to})`);
    }
  }
  if (SHORT_FUNCTIONS.includes(from)) problems.push(...longFunctions(file, sf));
}

// Cycles: depth-first search; a back edge to a file on the current path closes a circle.
const state = new Map(); // file -> 1 (on the path) | 2 (done)
const path = [];
const cycles = [];
function dfs(file) {
  state.set(file, 1);
  path.push(file);
  for (const d of graph.get(file)) {
    if (state.get(d) === 1) cycles.push([...path.slice(path.indexOf(d)), d].map((f) => relative(root, f)).join(' -> '));
    else if (!state.has(d)) dfs(d);
  }
  path.pop();
  state.set(file, 2);
}
for (const f of files) if (!state.has(f)) dfs(f);
for (const c of cycles) problems.push(`import cycle: ${c}`);

if (problems.length) {
  for (const p of problems) console.error(p);
  console.error(`check-imports: ${problems.length} problem(s) in ${files.length} files`);
  process.exit(1);
}
console.log(`check-imports: ${files.length} files, ${edges} imports: no cycle, no upward import, no function over ${MAX_FUNCTION_LINES} lines in ${SHORT_FUNCTIONS.join(', ')}`);
