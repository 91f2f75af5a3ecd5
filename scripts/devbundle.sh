#!/usr/bin/env bash
# Fills .devbundle/ (git-ignored) with what a GPU machine without Node.js needs to
# run the GPU tests: a compressed node binary, the TypeScript compiled to
# JavaScript (tsconfig.gpu.json), and the production node_modules. The device run
# then starts with:
#   xz -d -c .devbundle/node.xz > /tmp/node && chmod +x /tmp/node && export PATH=/tmp:$PATH
#   tar -xJf .devbundle/node_modules.tar.xz
#   node scripts/build-native.mjs && node scripts/build-cuda.mjs
#   VLLM_TS_NATIVE_DIR=$PWD/build node --test .devbundle/js/tests/gpu/*.test.js
# The whole working tree plus .devbundle must stay under 64 MiB (the device
# tool's limit); the sizes are printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .devbundle

if [ ! -s .devbundle/node.xz ]; then
  echo "devbundle: slimming and compressing $(command -v node) ($(node --version))"
  # NOTE: the working tree (~45 MiB of fixtures) plus a plain xz'd node (~21 MiB)
  # is over the 64 MiB a device run carries. Node embeds ICU's full locale data
  # (32 MiB, 8 MiB compressed); the copy shipped keeps only the root and English
  # locales and drops legacy charset converters, break dictionaries and
  # transliterators (Unicode properties and normalization stay), by rewriting
  # the ICU package's table of contents in place. Intl in other locales falls
  # back to root formats on the device; nothing else changes.
  node --input-type=module - "$(command -v node)" /tmp/node.devbundle <<'JS'
import { readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
const [src, dst] = process.argv.slice(2);
const bin = readFileSync(src);
const sym = execFileSync('nm', ['-S', src], { encoding: 'utf8', maxBuffer: 1 << 30 }).split('\n').find((l) => / R icudt\d+_dat$/.test(l));
if (!sym) {
  console.log('devbundle: no ICU symbol in this node (stripped?): shipping it whole');
  writeFileSync(dst, bin, { mode: 0o755 });
  process.exit(0);
}
const [addr, size] = sym.split(' ').slice(0, 2).map((h) => parseInt(h, 16));
const sec = execFileSync('readelf', ['-SW', src], { encoding: 'utf8' }).split('\n').find((l) => / \.rodata /.test(l));
const f = sec.trim().replace(/^\[\s*\d+\]\s*/, '').split(/\s+/);
const off = addr - parseInt(f[2], 16) + parseInt(f[3], 16);
const d = bin.subarray(off, off + size);
if (d.toString('latin1', 12, 16) !== 'CmnD') throw new Error('not ICU common data');
const hs = d.readUInt16LE(0);
const count = d.readUInt32LE(hs);
const items = [];
for (let i = 0; i < count; i++) {
  const no = d.readUInt32LE(hs + 4 + 8 * i), dofs = d.readUInt32LE(hs + 4 + 8 * i + 4);
  const end = i + 1 < count ? d.readUInt32LE(hs + 4 + 8 * (i + 1) + 4) : size - hs;
  const name = d.toString('latin1', hs + no, d.indexOf(0, hs + no));
  items.push({ name, data: d.subarray(hs + dofs, hs + end) });
}
const keepLocale = new Set(['root', 'res_index', 'pool', 'en', 'en_US', 'en_001', 'en_GB', 'en_US_POSIX']);
const keep = items.filter(({ name }) => {
  const rel = name.slice(name.indexOf('/') + 1);
  const dir = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
  const file = rel.slice(rel.lastIndexOf('/') + 1);
  const [stem, ext] = [file.slice(0, file.lastIndexOf('.')), file.slice(file.lastIndexOf('.') + 1)];
  if (ext === 'cnv' || ext === 'dict' || dir === 'translit') return false;
  if (/^[a-z]{2,3}(_[A-Za-z0-9]+)*$/.test(stem)) return keepLocale.has(stem);
  return true;
});
const namesLen = keep.reduce((a, k) => a + k.name.length + 1, 0);
let pos = (4 + 8 * keep.length + namesLen + 15) & ~15;
const out = Buffer.alloc(size);
d.copy(out, 0, 0, hs);
out.writeUInt32LE(keep.length, hs);
let np = 4 + 8 * keep.length;
keep.forEach((k, i) => {
  out.writeUInt32LE(np, hs + 4 + 8 * i);
  out.write(k.name + '\0', hs + np, 'latin1');
  np += k.name.length + 1;
  pos = (pos + 15) & ~15;
  out.writeUInt32LE(pos, hs + 4 + 8 * i + 4);
  k.data.copy(out, hs + pos);
  pos += k.data.length;
});
out.copy(bin, off);
writeFileSync(dst, bin, { mode: 0o755 });
console.log(`ICU data: kept ${keep.length} of ${count} items, ${(hs + pos) >> 10} KiB of ${size >> 10} KiB`);
JS
  strip /tmp/node.devbundle
  /tmp/node.devbundle -e 'if ("\u00e9".normalize("NFD").length !== 2) process.exit(1)' || { echo "devbundle: the slimmed node does not run" >&2; exit 1; }
  xz -T2 --x86 --lzma2=preset=9e -c /tmp/node.devbundle > .devbundle/node.xz
  rm -f /tmp/node.devbundle
fi

echo "devbundle: compiling TypeScript (tsconfig.gpu.json) to .devbundle/js"
rm -rf .devbundle/js
# Errors in files under construction elsewhere do not stop the emit; they are shown.
npx --no-install tsc -p tsconfig.gpu.json || echo "devbundle: tsc reported errors (JavaScript emitted anyway)"
[ -f .devbundle/js/tests/gpu/ops.test.js ] || { echo "devbundle: .devbundle/js/tests/gpu/ops.test.js was not emitted" >&2; exit 1; }

if [ ! -s .devbundle/node_modules.tar.xz ] || [ package-lock.json -nt .devbundle/node_modules.tar.xz ]; then
  echo "devbundle: packing the production node_modules"
  mapfile -t deps < <(npm ls --omit=dev --all --parseable 2>/dev/null | sed "s|^$PWD/||" | grep '^node_modules/')
  # koffi: keep the glibc x86-64 build only; no type declarations, source maps or
  # TypeScript sources (nothing on the device compiles against them).
  tar --exclude='node_modules/@koromix/koffi-linux-x64/musl_x64' \
    --exclude='node_modules/koffi/doc' --exclude='node_modules/zod/src' \
    --exclude='*.d.ts' --exclude='*.d.cts' --exclude='*.d.mts' --exclude='*.map' --exclude='*.md' \
    -cf - "${deps[@]}" | xz -T2 -9 > .devbundle/node_modules.tar.xz
fi

tree=$(git ls-files -z -co --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
bundle=$(du -sb .devbundle | cut -f1)
total=$((tree + bundle))
printf 'devbundle: node.xz %s, js %s, node_modules %s; working tree %d MiB + bundle %d MiB = %d MiB (limit 64)\n' \
  "$(du -h .devbundle/node.xz | cut -f1)" "$(du -sh .devbundle/js | cut -f1)" "$(du -h .devbundle/node_modules.tar.xz | cut -f1)" \
  $((tree >> 20)) $((bundle >> 20)) $((total >> 20))
if [ "$total" -ge $((64 << 20)) ]; then
  echo "devbundle: over the 64 MiB that a device run may carry" >&2
  exit 1
fi
