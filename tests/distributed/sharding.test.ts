// The sharding math of tensor parallelism, without a network: every family's
// layers built whole (size 1) and as N = 2 and 4 rank shards from the same
// checkpoint (synthetic tensors keyed by name), run on the same input in one
// process. A rank's all-reduce is left undone (its output is its partial sum) and
// its all-gathers replay what the ranks recorded in a first pass, so the
// recombined outputs (partials summed; gathered logits) must equal the unsharded
// layer's: column-parallel QKV and gate/up, row-parallel o/down, GQA / MQA with
// KV heads replicated over ranks, MoE experts cut by their width (with a shared
// expert), OLMo 2's norm over the gathered projection, the vocabulary-parallel
// embedding and LM head over a vocabulary that does not divide (4099).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadModelConfig } from '../../src/config/model_config.js';
import type { ModelConfig } from '../../src/config/types.js';
import { splitQkv } from '../../src/attention/backends/backend.js';
import { PagedAttentionBackend } from '../../src/attention/backends/paged.js';
import type { Communicator, TensorParallel } from '../../src/distributed/communicator.js';
import type { ForwardContext } from '../../src/model_executor/forward_context.js';
import { geluTanh } from '../../src/model_executor/layers/activation.js';
import { Linear } from '../../src/model_executor/layers/linear.js';
import { AllReduced, localHeads, RowParallelLinear } from '../../src/model_executor/layers/parallel_linear.js';
import { GatheredRMSNorm } from '../../src/model_executor/layers/parallel_norm.js';
import { ParallelLMHead, VocabParallelEmbedding } from '../../src/model_executor/layers/vocab_parallel_embedding.js';
import { buildModel } from '../../src/model_executor/models/registry.js';
import { WeightLoader, type WeightSourceLike } from '../../src/model_executor/weight_loader.js';
import { DType, loadNative, Tensor, Workspace } from '../../src/native/index.js';

const ops = loadNative('cpu');
ops.init(0, 0);
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** Every tensor a model asks for, f32 values in [-0.25, 0.25) from a hash of its name; `fused` says whether fused / stacked names exist. */
function syntheticSource(fused: boolean): WeightSourceLike {
  const shapes = new Map<string, readonly number[]>();
  return {
    has: (name) => fused || !/(qkv_proj|gate_up_proj|experts\.down_proj)/.test(name),
    expect: (name, shape) => {
      const known = shapes.get(name);
      if (known && known.join() !== shape.join()) throw new Error(`${name}: asked as [${shape}] and [${known}]`);
      shapes.set(name, shape);
      return { dtype: 'F32' };
    },
    read: (name) => {
      const n = shapes.get(name)!.reduce((a, b) => a * b, 1);
      let h = 2166136261;
      for (const c of name) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
      const v = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        h = Math.imul(h ^ (h >>> 15), 2246822519) ^ i;
        v[i] = ((h >>> 8) / 16777216 - 0.5) * 0.5;
      }
      return new Uint8Array(v.buffer);
    },
  };
}

/** A fixture's config.json with 8 heads (of its head_dim), `kv` KV heads and a 4099-token vocabulary. */
function familyConfig(fixture: string, kv: number): ModelConfig {
  const hf = JSON.parse(readFileSync(join('tests/fixtures', fixture, 'config.json'), 'utf8'));
  const dir = mkdtempSync(join(tmpdir(), 'tp-shard-'));
  dirs.push(dir);
  const headDim = hf.head_dim ?? hf.hidden_size / hf.num_attention_heads; // kept: rope tables depend on it
  Object.assign(hf, { vocab_size: 4099 });
  if (hf.model_type === 'gpt2') Object.assign(hf, { n_head: 8 });
  else Object.assign(hf, { num_attention_heads: 8, num_key_value_heads: kv, head_dim: headDim });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(hf));
  return loadModelConfig(dir);
}

/** allReduce left undone (partials); allGather replays `recorded[call]` (every rank's input) once recorded. */
class ReplayComm implements Communicator {
  readonly inputs: Float32Array[] = [];
  private call = 0;
  constructor(readonly rank: number, readonly worldSize: number, private readonly replay: Float32Array[][] | null) {}
  allReduce(): void {}
  allGather(x: Tensor, out: Tensor): void {
    this.inputs.push(x.toF32());
    const all = this.replay ? this.replay[this.call++] : Array.from({ length: this.worldSize }, () => x.toF32());
    const v = new Float32Array(out.numel);
    all.forEach((a, r) => v.set(a, r * a.length));
    out.copyFromHost(v);
  }
  allGatherNumbers(value: number): number[] {
    return [value];
  }
  close(): void {}
}

/** One prefill of T tokens through blocks of 4, with a KV cache of `kvHeads` heads per layer. */
function context(cfg: ModelConfig, kvHeads: number, T: number): ForwardContext {
  const bs = 4;
  const nb = Math.ceil(T / bs);
  const kv = Array.from({ length: cfg.numHiddenLayers }, () => ({
    key: Tensor.zeros(ops, [nb + 1, bs, kvHeads, cfg.headDim], DType.F32), value: Tensor.zeros(ops, [nb + 1, bs, kvHeads, cfg.headDim], DType.F32),
  }));
  const i32 = (a: number[]) => Tensor.fromI32(ops, Int32Array.from(a), [a.length]);
  const attnMetadata = {
    numSeqs: 1, numTokens: T, queryStartLoc: i32([0, T]), seqLens: i32([T]), blockTables: Tensor.fromI32(ops, Int32Array.from({ length: nb }, (_, b) => b + 1), [1, nb]),
    maxBlocksPerSeq: nb, slotMapping: i32(Array.from({ length: T }, (_, t) => bs + t)), maxQueryLen: T, maxSeqLen: T, blockSize: bs,
  };
  return { ops, act: DType.F32, ws: new Workspace(ops), attnMetadata, attnBackend: new PagedAttentionBackend(), kvCaches: kv };
}

interface Probe {
  /** The layer outputs to compare: name -> [rows, cols] f32, the whole layer's or one rank's partial / gathered result. */
  run(model: unknown, ctx: ForwardContext): Record<string, Float32Array>;
  /** Which outputs are partial sums (recombined by adding); the others are complete on every rank (gathered). */
  partial: Set<string>;
}

const T = 5;
const xOf = (h: number) => Tensor.fromF32(ops, Float32Array.from({ length: T * h }, (_, i) => Math.sin(i * 0.37) * 0.8), [T, h]);

const decoderProbe: Probe = {
  partial: new Set(['embed', 'attn', 'mlp']),
  run: (m, ctx) => {
    const model = m as { config: ModelConfig; embedTokens: { forward: (c: ForwardContext, ids: Tensor) => Tensor }; lmHead: Linear;
      layers: { selfAttn: { forward: (c: ForwardContext, p: Tensor, x: Tensor) => Tensor }; mlp: { forward: (c: ForwardContext, x: Tensor) => Tensor } }[] };
    const h = model.config.hiddenSize;
    const ids = Tensor.fromI32(ops, Int32Array.from([0, 1030, 2049, 3075, 4098]), [T]); // one id in each rank's rows at N = 4
    const pos = Tensor.fromI32(ops, Int32Array.from({ length: T }, (_, t) => t), [T]);
    const x = xOf(h);
    return {
      embed: model.embedTokens.forward(ctx, ids).toF32(),
      attn: model.layers[0].selfAttn.forward(ctx, pos, x).toF32(),
      mlp: model.layers[0].mlp.forward(ctx, x).toF32(),
      logits: model.lmHead.forward(ctx, x).toF32(),
    };
  },
};

const gpt2Probe: Probe = {
  partial: new Set(['embed', 'attn', 'mlp']),
  run: (m, ctx) => {
    const model = m as { config: ModelConfig; wte: { forward: (c: ForwardContext, ids: Tensor) => Tensor }; lmHead: Linear;
      blocks: { cAttn: Linear; cProj: Linear; cFc: Linear; mlpProj: Linear; attn: { spec: { numHeads: number; headDim: number }; forward: (...a: never[]) => Tensor } }[] };
    const b = model.blocks[0];
    const x = xOf(model.config.hiddenSize);
    const ids = Tensor.fromI32(ops, Int32Array.from([0, 1030, 2049, 3075, 4098]), [T]);
    const { numHeads, headDim } = b.attn.spec;
    const { q, k, v } = splitQkv(b.cAttn.forward(ctx, x), numHeads, numHeads, headDim, 4);
    const attn = (b.attn.forward as unknown as (c: ForwardContext, ...r: unknown[]) => Tensor)(ctx, q, k, v);
    return {
      embed: model.wte.forward(ctx, ids).toF32(),
      attn: b.cProj.forward(ctx, attn).toF32(),
      mlp: b.mlpProj.forward(ctx, geluTanh(ctx, b.cFc.forward(ctx, x))).toF32(),
      logits: model.lmHead.forward(ctx, x).toF32(),
    };
  },
};

function build(cfg: ModelConfig, fused: boolean, tp: TensorParallel): unknown {
  return buildModel(cfg, new WeightLoader(ops, syntheticSource(fused), null, DType.F32, 0, tp));
}

/** The unsharded outputs against the N ranks' outputs recombined. */
function checkSharding(cfg: ModelConfig, N: number, fused: boolean, probe: Probe): void {
  const kvLocal = (rank: number) => localHeads(cfg.numAttentionHeads, cfg.numKeyValueHeads, { rank, size: N, comm: null }).kvHeads;
  const full = probe.run(build(cfg, fused, { rank: 0, size: 1, comm: null }), context(cfg, cfg.numKeyValueHeads, T));
  const rankRun = (replay: Float32Array[][] | null) => Array.from({ length: N }, (_, rank) => {
    const comm = new ReplayComm(rank, N, replay ? replay.map((call) => call) : null);
    const out = probe.run(build(cfg, fused, { rank, size: N, comm }), context(cfg, kvLocal(rank), T));
    return { comm, out };
  });
  const first = rankRun(null);
  const calls = first[0].comm.inputs.length;
  const replay = Array.from({ length: calls }, (_, c) => first.map((r) => r.comm.inputs[c]));
  const ranks = rankRun(replay);
  for (const [name, want] of Object.entries(full)) {
    const got = new Float32Array(want.length);
    if (probe.partial.has(name)) ranks.forEach((r) => r.out[name].forEach((v, i) => (got[i] += v)));
    else got.set(ranks[0].out[name]);
    let worst = 0;
    let scale = 0;
    want.forEach((v, i) => {
      worst = Math.max(worst, Math.abs(v - got[i]));
      scale = Math.max(scale, Math.abs(v));
    });
    assert.ok(scale > 0, `${name}: the unsharded layer gives zeros (nothing compared)`);
    assert.ok(worst <= 1e-5 * Math.max(1, scale), `${cfg.architectures[0]} N=${N} ${name}: max |Δ| ${worst} (scale ${scale})`);
    if (!probe.partial.has(name)) ranks.forEach((r, i) => assert.deepEqual(r.out[name], ranks[0].out[name], `${name}: rank ${i} gathered another row`));
  }
}

const FAMILIES: { fixture: string; kv: number[]; fused?: boolean; probe?: Probe }[] = [
  { fixture: 'llama-gqa-fp16', kv: [2, 1] },
  { fixture: 'qwen2-bf16', kv: [2] },
  { fixture: 'qwen3-bf16', kv: [2, 1] },
  { fixture: 'mistral-swa-fp16', kv: [2] },
  { fixture: 'gemma-fp32', kv: [1] },
  { fixture: 'gemma2-bf16', kv: [2] },
  { fixture: 'gemma3-bf16', kv: [2] },
  { fixture: 'phi3-bf16', kv: [2], fused: true },
  { fixture: 'olmo2-bf16', kv: [4] },
  { fixture: 'granite-bf16', kv: [2] },
  { fixture: 'smollm3-bf16', kv: [2] },
  { fixture: 'mixtral-bf16', kv: [2] },
  { fixture: 'qwen2moe-bf16', kv: [2] },
  { fixture: 'qwen3moe-bf16', kv: [2] },
  { fixture: 'qwen3moe-bf16', kv: [2], fused: true },
  { fixture: 'gpt2-fp32', kv: [8], probe: gpt2Probe },
];

for (const f of FAMILIES) {
  for (const kv of f.kv) {
    const cfg = familyConfig(f.fixture, kv);
    for (const N of [2, 4]) {
      const layout = f.fused ? ', fused / stacked checkpoint tensors' : '';
      const rep = kv < N ? `, ${kv} KV head${kv > 1 ? 's' : ''} replicated over ${N} ranks` : '';
      test(`${cfg.architectures[0]} split into ${N} shards recombines to the unsharded layers (${kv} KV heads${rep}${layout})`, () => {
        checkSharding(cfg, N, f.fused ?? false, f.probe ?? decoderProbe);
      });
    }
  }
}

/** Every object reachable from `root` through own properties (tensors' native handles are leaves). */
function reachable(root: unknown): Set<object> {
  const seen = new Set<object>();
  const stack = [root];
  while (stack.length) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null || seen.has(v) || v instanceof Tensor || ArrayBuffer.isView(v)) continue;
    seen.add(v);
    for (const x of Object.values(v)) stack.push(x);
  }
  return seen;
}

const PARALLEL = [RowParallelLinear, AllReduced, VocabParallelEmbedding, ParallelLMHead, GatheredRMSNorm];

// The single-device hot path stays what it was: at size 1 no layer of any family is a
// tensor-parallel one (nothing reduces, gathers or holds a communicator).
test('at tensor-parallel size 1 every family builds only the unsharded layers', () => {
  for (const f of FAMILIES) {
    const cfg = familyConfig(f.fixture, f.kv[0]);
    const objs = reachable(build(cfg, f.fused ?? false, { rank: 0, size: 1, comm: null }));
    const found = [...objs].filter((o) => PARALLEL.some((C) => o instanceof C)).map((o) => o.constructor.name);
    assert.deepEqual(found, [], `${cfg.architectures[0]}`);
    // ...and the same walk finds them at size 2 (the check can fail).
    const two = reachable(build(cfg, f.fused ?? false, { rank: 0, size: 2, comm: new ReplayComm(0, 2, null) }));
    assert.ok([...two].some((o) => o instanceof RowParallelLinear || o instanceof AllReduced), `${cfg.architectures[0]} at size 2`);
  }
});
