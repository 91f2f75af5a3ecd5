// Keeps src/'s shape true (scripts/check-imports.mjs): records flow down, no import
// cycle, no import from a lower layer up to engine/, metrics/ or entrypoints/, and
// short functions in core/, engine/ and worker/. The checker itself is checked on a made-up tree.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';

const SCRIPT = 'scripts/check-imports.mjs';

function check(root?: string): { status: number | null; out: string } {
  const res = spawnSync(process.execPath, [SCRIPT, ...(root ? [root] : [])], { encoding: 'utf8' });
  return { status: res.status, out: res.stdout + res.stderr };
}

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'vt-imports-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

test('src/ has no import cycle, no upward import, no over-long function in core/, engine/, worker/', () => {
  const { status, out } = check();
  assert.equal(status, 0, out);
  assert.match(out, /no cycle, no upward import/);
});

test('the checker reports a cycle, a type-only upward import and a long function', () => {
  const long = `export function big(): number {\n  let x = 0;\n${'  x += 1;\n'.repeat(85)}  return x;\n}\n`;
  const root = tree({
    'core/a.ts': "import { b } from './b.js';\nexport const a = () => b;\n",
    'core/b.ts': "import { a } from './a.js';\nexport const b = () => a;\n",
    'worker/w.ts': "import type { E } from '../engine/e.js';\nexport type W = E;\n",
    'engine/e.ts': `export type E = number;\n${long}`,
    'engine/ok.ts': "import type { W } from '../worker/w.js';\nexport type Ok = W;\n",
  });
  try {
    const { status, out } = check(root);
    assert.equal(status, 1, out);
    assert.match(out, /import cycle: core\/a\.ts -> core\/b\.ts -> core\/a\.ts/);
    assert.match(out, /upward import: worker\/w\.ts \(worker\) imports engine\/e\.ts \(engine\)/);
    assert.match(out, /engine\/e\.ts:2 big is 89 lines/);
    // engine -> worker is downward: not reported.
    assert.doesNotMatch(out, /engine\/ok\.ts/);
    assert.match(out, /3 problem\(s\)/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
