// The safetensors reader: fixture weights (checked against HF's reference logits),
// sharded folders, dummy weights, and every load error naming its file and tensor.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WeightFileError, WeightSource } from '../../src/model_executor/model_loader/safetensors.js';
import { DummyWeightSource } from '../../src/model_executor/model_loader/dummy.js';
import { openWeights } from '../../src/model_executor/model_loader/index.js';
import { loadModelConfig } from '../../src/config/model_config.js';

const tmp = mkdtempSync(join(tmpdir(), 'vt-safetensors-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface RawEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** Independent minimal parse of a safetensors file: header + data section. */
function parseRaw(path: string): { header: Record<string, RawEntry>; data: Buffer } {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  delete header.__metadata__;
  return { header, data: buf.subarray(8 + n) };
}

function writeRaw(path: string, header: Record<string, unknown>, data: Uint8Array, headerLen?: bigint): void {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLen ?? BigInt(json.length));
  writeFileSync(path, Buffer.concat([len, json, data]));
}

/** A fresh folder holding a (modified) copy of gpt2-fp32's model.safetensors. */
function variant(name: string, edit: (header: Record<string, RawEntry>, data: Buffer) => { header?: Record<string, unknown>; data?: Uint8Array; headerLen?: bigint }): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  const { header, data } = parseRaw('tests/fixtures/gpt2-fp32/model.safetensors');
  const out = edit(header, data);
  writeRaw(join(dir, 'model.safetensors'), out.header ?? header, out.data ?? data, out.headerLen);
  return dir;
}

function throwsNaming(fn: () => unknown, file: string, tensor: string | null, pattern: RegExp): void {
  assert.throws(fn, (e: Error) => {
    assert.ok(e instanceof WeightFileError, `${e.name}: ${e.message}`);
    assert.ok(e.message.includes(file), `names ${file}: ${e.message}`);
    if (tensor !== null) assert.ok(e.message.includes(tensor), `names ${tensor}: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

const dot = (a: Float32Array, ao: number, b: Float32Array, bo: number, n: number) => {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[ao + i] * b[bo + i];
  return s;
};

describe('fixture weights', () => {
  // NOTE: the reference logits are the final hidden state times the output matrix, so
  // reading the weights right (bf16/fp16/f32) reproduces HF's logits from its hidden:
  // its top-k logits and the logsumexp of the whole row (the compact reference).
  const cases: [string, string, string][] = [
    ['tiny-llama-kjv', 'models/tiny-llama-kjv', 'model.embed_tokens.weight'],
    ['llama-gqa-fp16', 'tests/fixtures/llama-gqa-fp16', 'lm_head.weight'],
    ['qwen2-bf16', 'tests/fixtures/qwen2-bf16', 'model.embed_tokens.weight'],
    ['gemma-fp32', 'tests/fixtures/gemma-fp32', 'model.embed_tokens.weight'],
    ['gpt2-fp32', 'tests/fixtures/gpt2-fp32', 'transformer.wte.weight'],
  ];
  for (const [name, dir, outName] of cases) {
    it(`${name}: hidden x ${outName} gives the reference logits`, () => {
      const config = loadModelConfig(dir);
      const weights = WeightSource.open(dir);
      const ref = WeightSource.openFile(`tests/fixtures/${name}/reference.safetensors`);
      try {
        const H = config.hiddenSize;
        const V = config.vocabSize;
        const w = weights.readF32(weights.expect(outName, [V, H]).name); // [vocab, hidden]
        const hidden = ref.readF32('hidden_0'); // [T, hidden]
        const top = ref.readF32('top_logits_0'); // [T, k]
        const ids = new Int32Array(ref.read('top_ids_0').slice().buffer); // [T, k]
        const lse = ref.readF32('logsumexp_0'); // [T]
        const [T, K] = ref.info('top_logits_0').shape;
        assert.equal(ref.info('hidden_0').shape[0], T);
        for (let t = 0; t < T; t++) {
          const row = Array.from({ length: V }, (_, v) => dot(hidden, t * H, w, v * H, H));
          for (let j = 0; j < K; j++) {
            const want = top[t * K + j];
            const got = row[ids[t * K + j]];
            assert.ok(Math.abs(got - want) <= 1e-3 * (1 + Math.abs(want)), `t=${t} top-${j}: ${got} vs ${want}`);
          }
          const m = Math.max(...row);
          const got = m + Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0));
          assert.ok(Math.abs(got - lse[t]) <= 1e-3 * (1 + Math.abs(lse[t])), `t=${t} logsumexp: ${got} vs ${lse[t]}`);
        }
      } finally {
        weights.close();
        ref.close();
      }
    });
  }

  it('lists tensors with dtype, shape and file; reads into a given buffer', () => {
    const w = WeightSource.open('models/tiny-llama-kjv');
    try {
      assert.equal(w.isDummy, false);
      assert.equal(w.names().length, 8 * 9 + 2); // 9 per layer + embed_tokens + norm
      assert.ok(w.has('model.norm.weight'));
      assert.ok(!w.has('lm_head.weight'));
      const info = w.info('model.layers.0.self_attn.k_proj.weight');
      assert.equal(info.dtype, 'BF16');
      assert.deepEqual(info.shape, [128, 256]);
      assert.equal(info.file, join('models/tiny-llama-kjv', 'model.safetensors'));
      assert.equal(info.nbytes, 128 * 256 * 2);
      const { header, data } = parseRaw('models/tiny-llama-kjv/model.safetensors');
      const [b, e] = header['model.norm.weight'].data_offsets;
      const dst = new Uint8Array(e - b);
      assert.equal(w.read('model.norm.weight', dst), dst);
      assert.deepEqual(Buffer.from(dst), data.subarray(b, e));
      assert.throws(() => w.read('model.norm.weight', new Uint8Array(3)), /destination holds 3 bytes/);
    } finally {
      w.close();
    }
  });
});

describe('sharded checkpoints', () => {
  // Split tiny-llama-kjv into two shards + an index, as HF's save_pretrained does.
  const dir = join(tmp, 'sharded');
  mkdirSync(dir, { recursive: true });
  const { header, data } = parseRaw('models/tiny-llama-kjv/model.safetensors');
  const names = Object.keys(header).sort();
  const weightMap: Record<string, string> = {};
  const shardNames = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
  shardNames.forEach((shard, s) => {
    const part = names.filter((_, i) => i % 2 === s);
    const h: Record<string, unknown> = { __metadata__: { format: 'pt' } };
    const chunks: Buffer[] = [];
    let off = 0;
    for (const n of part) {
      const [b, e] = header[n].data_offsets;
      h[n] = { dtype: header[n].dtype, shape: header[n].shape, data_offsets: [off, off + e - b] };
      chunks.push(data.subarray(b, e));
      off += e - b;
      weightMap[n] = shard;
    }
    writeRaw(join(dir, shard), h, Buffer.concat(chunks));
  });
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));

  it('reads every tensor of a sharded folder as in the single file', () => {
    const w = WeightSource.open(dir);
    try {
      assert.deepEqual(w.names().sort(), names);
      for (const n of names) {
        const [b, e] = header[n].data_offsets;
        assert.deepEqual(Buffer.from(w.read(n)), data.subarray(b, e), n);
      }
      assert.ok(w.info('model.embed_tokens.weight').file.endsWith(weightMap['model.embed_tokens.weight']));
    } finally {
      w.close();
    }
  });

  it('a missing shard names the shard; a tensor missing from its shard names both', () => {
    const broken = join(tmp, 'sharded-missing');
    mkdirSync(broken, { recursive: true });
    copyFileSync(join(dir, 'model.safetensors.index.json'), join(broken, 'model.safetensors.index.json'));
    copyFileSync(join(dir, shardNames[0]), join(broken, shardNames[0]));
    throwsNaming(() => WeightSource.open(broken), shardNames[1], null, /missing/);

    const lying = join(tmp, 'sharded-lying');
    mkdirSync(lying, { recursive: true });
    for (const s of shardNames) copyFileSync(join(dir, s), join(lying, s));
    const name = names[0]; // in shard 1
    writeFileSync(join(lying, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { ...weightMap, [name]: shardNames[1] } }));
    throwsNaming(() => WeightSource.open(lying), shardNames[1], name, /missing tensor/);
  });
});

describe('load errors name the file and the tensor', () => {
  it('no weights in the folder', () => {
    const empty = join(tmp, 'empty');
    mkdirSync(empty, { recursive: true });
    throwsNaming(() => WeightSource.open(empty), 'model.safetensors', null, /missing/);
  });

  it('truncated file', () => {
    const { header } = parseRaw('tests/fixtures/gpt2-fp32/model.safetensors');
    const last = Object.entries(header).sort((a, b) => b[1].data_offsets[1] - a[1].data_offsets[1])[0][0];
    const dir = variant('truncated', (_h, data) => ({ data: data.subarray(0, data.length - 1000) }));
    throwsNaming(() => WeightSource.open(dir), 'model.safetensors', last, /truncated/);
  });

  it('data_offsets that do not match dtype x shape', () => {
    const dir = variant('lying-size', (h) => {
      h['transformer.h.0.ln_1.bias'].shape = [129];
      return {};
    });
    throwsNaming(() => WeightSource.open(dir), 'model.safetensors', 'transformer.h.0.ln_1.bias', /hold 512 bytes but F32 x \[129\] needs 516/);
  });

  it('overlapping tensors', () => {
    const dir = variant('overlap', (h) => {
      h['transformer.h.0.ln_1.bias'].data_offsets = [...h['transformer.h.0.ln_1.weight'].data_offsets];
      return {};
    });
    throwsNaming(() => WeightSource.open(dir), 'model.safetensors', 'transformer.h.0.ln_1.bias', /overlap/);
  });

  it('header length beyond the file, and a header that is not JSON', () => {
    const long = variant('long-header', (_h, data) => ({ headerLen: BigInt(10 ** 9) + BigInt(data.length) }));
    throwsNaming(() => WeightSource.open(long), 'model.safetensors', null, /header length \d+ goes beyond the end of the file/);
    const dir = join(tmp, 'bad-json');
    mkdirSync(dir, { recursive: true });
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(5n);
    writeFileSync(join(dir, 'model.safetensors'), Buffer.concat([len, Buffer.from('{"a":'), Buffer.alloc(16)]));
    throwsNaming(() => WeightSource.open(dir), 'model.safetensors', null, /header is not valid JSON/);
    const tiny = join(tmp, 'tiny-file');
    mkdirSync(tiny, { recursive: true });
    writeFileSync(join(tiny, 'model.safetensors'), Buffer.alloc(3));
    throwsNaming(() => WeightSource.open(tiny), 'model.safetensors', null, /too small/);
  });

  it('missing tensor and wrong shape', () => {
    const w = WeightSource.open('models/tiny-llama-kjv');
    try {
      throwsNaming(() => w.expect('lm_head.weight', [4096, 256]), 'model.safetensors', 'lm_head.weight', /missing tensor/);
      assert.throws(
        () => w.expect('model.embed_tokens.weight', [4096, 128]),
        { message: `${join('models/tiny-llama-kjv', 'model.safetensors')}: tensor model.embed_tokens.weight has shape [4096, 256] but the model expects [4096, 128]` },
      );
      throwsNaming(() => w.read('nope'), 'model.safetensors', 'nope', /missing tensor/);
    } finally {
      w.close();
    }
  });
});

describe('dummy weights', () => {
  it('reports whatever is expected, in the model dtype, without data', () => {
    const config = loadModelConfig('tests/fixtures/llama-gqa-fp16');
    const w = openWeights(config, 'dummy');
    assert.ok(w instanceof DummyWeightSource);
    assert.equal(w.isDummy, true);
    assert.ok(w.has('anything'));
    const info = w.expect('model.layers.0.self_attn.q_proj.weight', [192, 192]);
    assert.deepEqual(info.shape, [192, 192]);
    assert.equal(info.dtype, 'F16');
    assert.equal(info.nbytes, 192 * 192 * 2);
    assert.deepEqual(w.names(), ['model.layers.0.self_attn.q_proj.weight']);
    assert.deepEqual(w.info('model.layers.0.self_attn.q_proj.weight'), info);
    assert.throws(() => w.read('model.layers.0.self_attn.q_proj.weight'), /vt_fill_random/);
    const real = openWeights(config, 'auto');
    assert.equal(real.isDummy, false);
    real.close();
  });
});
