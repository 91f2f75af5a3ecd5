// Test harness: one teacher-forced forward pass of a model over whole sequences
// (no scheduler), returning host f32 logits and final hidden states.
import { loadModelConfig } from '../../src/config/model_config.js';
import { PagedAttentionBackend } from '../../src/attention/backends/paged.js';
import type { ForwardContext, LayerKVCache } from '../../src/model_executor/forward_context.js';
import { openWeights } from '../../src/model_executor/model_loader/index.js';
import { buildModel } from '../../src/model_executor/models/registry.js';
import { WeightLoader } from '../../src/model_executor/weight_loader.js';
import { type Device, DType, loadNative, Tensor, Workspace } from '../../src/native/index.js';
import type { EngineArgs } from '../../src/config/engine_args.js';
import { resolveActDtype } from '../../src/worker/worker.js';
import type { ModelConfig } from '../../src/config/types.js';

export interface ForwardResult {
  logits: Float32Array; // [T, vocab]
  hidden: Float32Array; // [T, hidden]
}

export class TestModel {
  private constructor(
    readonly actName: string,
    readonly config: ModelConfig,
    private readonly run: (seqs: number[][]) => ForwardResult[],
    readonly close: () => void,
  ) {}

  static load(dir: string, opts: { blockSize?: number; numThreads?: number; device?: Device; dtype?: EngineArgs['dtype'] } = {}): TestModel {
    const device = opts.device ?? 'cpu';
    const ops = loadNative(device);
    ops.init(0, opts.numThreads ?? 0);
    const config = loadModelConfig(dir);
    const act = resolveActDtype(device, opts.dtype ?? 'auto', config);
    const source = openWeights(config);
    const loader = new WeightLoader(ops, source, device === 'cpu' ? null : act);
    const model = buildModel(config, loader);
    source.close();
    const bs = opts.blockSize ?? 16;
    const ws = new Workspace(ops);
    const backend = new PagedAttentionBackend();
    const run = (seqs: number[][]): ForwardResult[] => {
      const total = seqs.reduce((a, s) => a + s.length, 0);
      const blocksPer = seqs.map((s) => Math.ceil(s.length / bs));
      const numBlocks = blocksPer.reduce((a, b) => a + b, 0) + 1;
      const kvShape = [numBlocks, bs, config.numKeyValueHeads, config.headDim];
      const kv: LayerKVCache[] = Array.from({ length: config.numHiddenLayers }, () => ({
        key: Tensor.zeros(ops, kvShape, act),
        value: Tensor.zeros(ops, kvShape, act),
      }));
      // Blocks handed out in reverse so that tables are not the identity.
      let next = numBlocks - 1;
      const maxBlocks = Math.max(...blocksPer);
      const tables = new Int32Array(seqs.length * maxBlocks);
      const ids = new Int32Array(total);
      const pos = new Int32Array(total);
      const slots = new Int32Array(total);
      const qsl = new Int32Array(seqs.length + 1);
      const lens = new Int32Array(seqs.length);
      let t = 0;
      seqs.forEach((s, i) => {
        for (let b = 0; b < blocksPer[i]; b++) tables[i * maxBlocks + b] = next--;
        qsl[i] = t;
        lens[i] = s.length;
        s.forEach((tok, j) => {
          ids[t + j] = tok;
          pos[t + j] = j;
          slots[t + j] = tables[i * maxBlocks + Math.floor(j / bs)] * bs + (j % bs);
        });
        t += s.length;
      });
      qsl[seqs.length] = t;
      const up = (a: Int32Array, shape: number[]) => Tensor.fromI32(ops, a, shape);
      const md = {
        numSeqs: seqs.length, numTokens: total, queryStartLoc: up(qsl, [seqs.length + 1]), seqLens: up(lens, [seqs.length]),
        blockTables: up(tables, [seqs.length, maxBlocks]), maxBlocksPerSeq: maxBlocks, slotMapping: up(slots, [total]),
        maxQueryLen: Math.max(...seqs.map((s) => s.length)), maxSeqLen: Math.max(...seqs.map((s) => s.length)), blockSize: bs,
      };
      const ctx: ForwardContext = { ops, act, ws, attnMetadata: md, attnBackend: backend, kvCaches: kv };
      const idsT = up(ids, [total]);
      const posT = up(pos, [total]);
      const hidden = model.forward(ctx, idsT, posT);
      const logits = model.computeLogits(ctx, hidden).toF32();
      const h = hidden.toF32();
      ws.reset();
      for (const c of kv) { c.key.dispose(); c.value.dispose(); }
      for (const x of [idsT, posT, md.queryStartLoc, md.seqLens, md.blockTables, md.slotMapping]) x.dispose();
      const V = config.vocabSize;
      const H = config.hiddenSize;
      let off = 0;
      return seqs.map((s) => {
        const r = { logits: logits.slice(off * V, (off + s.length) * V), hidden: h.slice(off * H, (off + s.length) * H) };
        off += s.length;
        return r;
      });
    };
    return new TestModel(DType[act], config, run, () => { ws.dispose(); loader.disposeAll(); });
  }

  forward(seqs: number[][]): ForwardResult[] {
    return this.run(seqs);
  }
}
