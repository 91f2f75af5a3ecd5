// GPT2LMHeadModel: pre-LayerNorm blocks with biases everywhere, learned absolute
// positions (no rope), a plain GELU-tanh MLP and checkpoint weights stored by
// Conv1D as [in, out]. Architecture only; kernels live behind the layers.
import type { ModelConfig } from '../../config/types.js';
import { check, DTYPE_BYTES, type Tensor } from '../../native/index.js';
import { splitQkv } from '../../attention/backends/backend.js';
import type { ForwardContext } from '../forward_context.js';
import { geluTanh } from '../layers/activation.js';
import { Attention } from '../layers/attention.js';
import { VocabEmbedding } from '../layers/embedding.js';
import { LayerNorm } from '../layers/layernorm.js';
import type { Linear } from '../layers/linear.js';
import { conv1dColumnLinear, evenShard, localHeads, rowLinear } from '../layers/parallel_linear.js';
import { lmHead, vocabEmbedding } from '../layers/vocab_parallel_embedding.js';
import type { WeightLoader } from '../weight_loader.js';
import { runLayers } from './utils.js';
import type { CausalLM } from './interface.js';

/** HF's activation_function values that are the tanh approximation of GELU. */
const TANH_GELU = new Set(['gelu_new', 'gelu_pytorch_tanh', 'gelu_fast']);

class GPT2Block {
  readonly ln1: LayerNorm;
  readonly ln2: LayerNorm;
  readonly cAttn: Linear; // [3 * hidden, hidden]
  readonly cProj: Linear; // [hidden, hidden]
  readonly cFc: Linear; // [ffn, hidden]
  readonly mlpProj: Linear; // [hidden, ffn]
  readonly attn: Attention;

  constructor(cfg: ModelConfig, w: WeightLoader, p: string, i: number) {
    const { hiddenSize: h, numAttentionHeads: H, headDim: D, intermediateSize: ffn } = cfg;
    const ln = (n: string) => new LayerNorm(w.get(`${p}.${n}.weight`, [h]), w.get(`${p}.${n}.bias`, [h]), cfg.rmsNormEps);
    // Conv1D modules: stored [in, out] in the checkpoint, transposed to [out, in] at load;
    // c_attn and c_fc column-parallel (this rank's heads / width), the c_proj's row-parallel.
    const { heads, headStart } = localHeads(H, H, w.tp);
    const q: [number, number] = [headStart * D, (headStart + heads) * D];
    this.ln1 = ln('ln_1');
    this.ln2 = ln('ln_2');
    this.cAttn = conv1dColumnLinear(w, `${p}.attn.c_attn`, h, 3 * h, [0, 1, 2].map((j) => [j * h + q[0], j * h + q[1]]), true);
    this.cProj = rowLinear(w, `${p}.attn.c_proj`, h, h, true, { transposed: true });
    this.cFc = conv1dColumnLinear(w, `${p}.mlp.c_fc`, h, ffn, [evenShard(ffn, w.tp, 'n_inner')], true);
    this.mlpProj = rowLinear(w, `${p}.mlp.c_proj`, h, ffn, true, { transposed: true });
    const hf = cfg.hfConfig;
    let scale = hf.scale_attn_weights === false ? 1 : 1 / Math.sqrt(D);
    if (hf.scale_attn_by_inverse_layer_idx === true) scale /= i + 1;
    this.attn = new Attention(i, heads, heads, D, { scale });
  }

  /**
   * hidden [T, h] (null in the first block), residual [T, h] (updated in place)
   * -> [T, h] before the residual add
   */
  forward(ctx: ForwardContext, hidden: Tensor | null, residual: Tensor, out: Tensor): void {
    const { numHeads, headDim } = this.attn.spec;
    let x = hidden ? this.ln1.forward(ctx, hidden, residual) : this.ln1.forward(ctx, residual); // [T, h]
    const qkv = this.cAttn.forward(ctx, x); // [T, 3 * h]
    const { q, k, v } = splitQkv(qkv, numHeads, numHeads, headDim, DTYPE_BYTES[ctx.act]);
    x = this.cProj.forward(ctx, this.attn.forward(ctx, q, k, v)); // [T, h]
    x = this.ln2.forward(ctx, x, residual);
    this.mlpProj.forward(ctx, geluTanh(ctx, this.cFc.forward(ctx, x)), out); // [T, h]
  }
}

export class GPT2LMHeadModel implements CausalLM {
  readonly wte: VocabEmbedding;
  readonly wpe: VocabEmbedding;
  readonly blocks: GPT2Block[] = [];
  readonly lnF: LayerNorm;
  readonly lmHead: Linear;

  constructor(readonly config: ModelConfig, w: WeightLoader) {
    const { hiddenSize: h, vocabSize: V, maxPositionEmbeddings: P } = config;
    if (config.numKeyValueHeads !== config.numAttentionHeads) throw new Error('GPT-2 has no grouped-query attention: remove num_key_value_heads from config.json');
    if (!TANH_GELU.has(config.hiddenAct)) {
      throw new Error(`GPT-2 activation_function '${config.hiddenAct}' is not supported (supported: ${[...TANH_GELU].join(', ')})`);
    }
    // NOTE: HF's GPT2LMHeadModel saves 'transformer.'-prefixed names; the original
    // OpenAI checkpoints (e.g. openai-community/gpt2) hold the bare GPT2Model names.
    const pre = w.has('transformer.wte.weight') ? 'transformer.' : '';
    const { embed, weight: wte } = vocabEmbedding(w, `${pre}wte.weight`, V, h);
    this.wte = embed;
    this.wpe = new VocabEmbedding(w.get(`${pre}wpe.weight`, [P, h]));
    for (let i = 0; i < config.numHiddenLayers; i++) this.blocks.push(new GPT2Block(config, w, `${pre}h.${i}`, i));
    this.lnF = new LayerNorm(w.get(`${pre}ln_f.weight`, [h]), w.get(`${pre}ln_f.bias`, [h]), config.rmsNormEps);
    this.lmHead = lmHead(w, config.tieWordEmbeddings ? wte : null, 'lm_head.weight', V, h);
  }

  forward(ctx: ForwardContext, inputIds: Tensor, positions: Tensor): Tensor {
    const tok = this.wte.forward(ctx, inputIds); // [T, h]
    const pos = this.wpe.forward(ctx, positions); // [T, h]: positions index the wpe rows
    const residual = ctx.ws.alloc(tok.shape, ctx.act); // [T, h]
    check(ctx.ops, ctx.ops.add(residual.addr, tok.addr, pos.addr, tok.numel, ctx.act), 'add');
    const out = ctx.ws.alloc(residual.shape, ctx.act); // [T, h]
    const hidden = runLayers(ctx, this.blocks, out, (block, h, o) => block.forward(ctx, h, residual, o));
    return hidden ? this.lnF.forward(ctx, hidden, residual) : this.lnF.forward(ctx, residual); // [T, h]
  }

  computeLogits(ctx: ForwardContext, hidden: Tensor): Tensor {
    return this.lmHead.forward(ctx, hidden); // [n, vocab]
  }
}
