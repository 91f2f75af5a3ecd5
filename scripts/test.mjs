// Runs the test files under the given folders (default: tests/, without tests/gpu
// and tests/soak) with node's own test runner; TypeScript through tsx.
// Node 20 has no globs for --test, so the files are listed here.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const roots = args.length ? args : ['tests'];
const skip = args.length ? [] : ['tests/gpu', 'tests/soak'];

function collect(path, out) {
  if (skip.includes(path)) return out;
  if (statSync(path).isFile()) {
    if (path.endsWith('.test.ts')) out.push(path);
    return out;
  }
  for (const name of readdirSync(path).sort()) {
    if (name === 'fixtures' || name === 'node_modules') continue;
    collect(join(path, name), out);
  }
  return out;
}

const files = roots.flatMap((r) => collect(r, []));
const res = spawnSync(process.execPath, ['--import', 'tsx', '--test', ...files], { stdio: 'inherit' });
process.exit(res.status ?? 1);
