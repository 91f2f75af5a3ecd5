// Shared by the Hub tests: the repos the local Hub serves (the tiny model, as one
// file and sharded, and a gated copy), temporary HF_HOMEs, and a check of the
// cache against huggingface_hub's layout.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeHub, shardSafetensors } from './fake_hub.js';

export const MODEL_DIR = 'models/tiny-llama-kjv';
export const SHARDED = 'kjv/tiny-llama-sharded';
export const SINGLE = 'kjv/tiny-llama';
export const GATED = 'kjv/tiny-llama-gated';
export const TOKEN = 'hf_test_token_123';
export const SHARDED_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors.index.json',
  'model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors'];
export const SINGLE_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'];

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** What a repo holds: the tiny model plus files a model must not download (other formats, subfolders). */
export function modelFiles(sharded: boolean): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const f of readdirSync(MODEL_DIR)) if (f !== 'model.safetensors') out[f] = readFileSync(join(MODEL_DIR, f));
  const weights = readFileSync(join(MODEL_DIR, 'model.safetensors'));
  Object.assign(out, sharded ? shardSafetensors(weights, 3) : { 'model.safetensors': weights });
  out['pytorch_model.bin'] = Buffer.from('not a checkpoint vllm-ts reads');
  out['original/consolidated.safetensors'] = Buffer.from('unused');
  out['README.md'] = Buffer.from('# tiny');
  return out;
}

const HUB_ENV = ['HF_ENDPOINT', 'HF_HOME', 'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'HF_TOKEN_PATH',
  'HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE', 'HF_HUB_DISABLE_PROGRESS_BARS', 'HF_HUB_DOWNLOAD_TIMEOUT'];

/** A local Hub serving the three repos; the machine's own Hub settings cleared from process.env (children inherit it). */
export async function startHub(): Promise<FakeHub> {
  for (const k of HUB_ENV) delete process.env[k];
  const hub = new FakeHub();
  hub.addRepo(SHARDED, { files: modelFiles(true), revisions: ['v1.0'] });
  hub.addRepo(SINGLE, { files: modelFiles(false) });
  hub.addRepo(GATED, { files: modelFiles(false), gatedToken: TOKEN });
  await hub.start();
  return hub;
}

const homes: string[] = [];
export function freshHome(): string {
  const home = mkdtempSync(join(tmpdir(), 'vllm-ts-hf-home-'));
  homes.push(home);
  return home;
}
export function removeHomes(): void {
  for (const h of homes.splice(0)) rmSync(h, { recursive: true, force: true });
}

/** Checks <cacheDir>/models--org--name against huggingface_hub's layout and the served bytes; returns the snapshot folder. */
export function checkLayout(hub: FakeHub, cacheDir: string, repoId: string, expected: string[], revision = 'main'): string {
  const root = join(cacheDir, `models--${repoId.replace('/', '--')}`);
  const commit = readFileSync(join(root, 'refs', revision), 'utf8');
  assert.equal(commit, hub.commit(repoId, revision), `refs/${revision} holds the commit`);
  const snap = join(root, 'snapshots', commit);
  assert.deepEqual(readdirSync(snap).sort(), [...expected].sort(), 'only the files a model needs');
  const served = modelFiles(repoId === SHARDED);
  for (const f of expected) {
    const p = join(snap, f);
    assert.ok(lstatSync(p).isSymbolicLink(), `${f} is a symlink`);
    const target = readlinkSync(p);
    assert.match(target, /^\.\.\/\.\.\/blobs\/[0-9a-f]{40,64}$/, `${f} -> ${target}`);
    if (f.endsWith('.safetensors')) assert.equal(target.slice('../../blobs/'.length), sha256(served[f]), 'an LFS blob is named by its sha256');
    assert.ok(readFileSync(p).equals(served[f]), `${f} has the served bytes`);
  }
  assert.deepEqual(readdirSync(join(root, 'blobs')).filter((b) => b.endsWith('.incomplete')), []);
  return snap;
}
