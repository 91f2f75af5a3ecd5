// The sparse MoE block that replaces a decoder layer's MLP (Qwen3-MoE, Mixtral,
// Qwen2-MoE): a router (gate: Linear [E, hidden]) picks each token's top-k experts,
// the FusedMoE layer runs them, and Qwen2-MoE adds a shared expert scaled by
// sigmoid(shared_expert_gate). Architecture only; kernels live in layers/fused_moe.ts.
import type { ModelConfig } from '../../config/types.js';
import type { Tensor } from '../../native/index.js';
import type { ForwardContext } from '../forward_context.js';
import { gatedActFor } from '../layers/activation.js';
import { FusedMoE, loadExperts, type FusedMoEConfig } from '../layers/fused_moe.js';
import { Linear } from '../layers/linear.js';
import { loadExpertShards } from '../layers/fused_moe_parallel.js';
import { AllReduced } from '../layers/parallel_linear.js';
import { commOf } from '../../distributed/communicator.js';
import type { WeightLoader } from '../weight_loader.js';
import { GatedMLP, type MLPBlock } from './decoder.js';

export interface SparseMoeSpec {
  numExperts: number;
  topK: number;
  intermediate: number; // one expert's width
  renormalize: boolean;
  /** The checkpoint's names of an expert's [gate, up, down] projections. */
  expertNames: readonly [string, string, string];
  /** Qwen2-MoE: the shared expert's width (0: none). */
  sharedIntermediate?: number;
}

export class SparseMoeBlock implements MLPBlock {
  readonly gate: Linear; // router [E, hidden]
  readonly experts: FusedMoE;
  readonly sharedExpert: GatedMLP | null = null; // [hidden] -> [sharedIntermediate] -> [hidden]
  readonly sharedExpertGate: Linear | null = null; // [1, hidden]

  constructor(cfg: ModelConfig, w: WeightLoader, p: string, s: SparseMoeSpec) {
    const h = cfg.hiddenSize;
    const c: FusedMoEConfig = {
      numExperts: s.numExperts, topK: s.topK, hidden: h, intermediate: s.intermediate, renormalize: s.renormalize,
      act: gatedActFor(cfg.hiddenAct),
    };
    if (!(s.topK >= 1 && s.topK <= s.numExperts)) {
      throw new Error(`${cfg.architectures[0]}: num_experts_per_tok ${s.topK} must be in [1, ${s.numExperts}] (the number of experts)`);
    }
    this.gate = new Linear(w.get(`${p}.gate.weight`, [s.numExperts, h]));
    // Under tensor parallelism every expert is cut by its width: this rank's F / size.
    const { w13, w2 } = w.tp.size === 1 ? loadExperts(w, `${p}.experts`, c, s.expertNames) : loadExpertShards(w, `${p}.experts`, c, s.expertNames);
    this.experts = new FusedMoE({ ...c, intermediate: w2.shape[2] }, w13, w2);
    if (s.sharedIntermediate) {
      // Not reduced alone: its partial sum joins the experts' before the block's one all-reduce.
      this.sharedExpert = new GatedMLP(cfg, w, `${p}.shared_expert`, s.sharedIntermediate, false);
      this.sharedExpertGate = new Linear(w.get(`${p}.shared_expert_gate.weight`, [1, h]));
    }
  }

  /** x [T, hidden] -> [T, hidden] (into `out` when given) */
  forward(ctx: ForwardContext, x: Tensor, out?: Tensor): Tensor {
    const logits = this.gate.forward(ctx, x); // [T, E]
    const shared = this.sharedExpert
      ? { out: this.sharedExpert.forward(ctx, x), gate: this.sharedExpertGate!.forward(ctx, x) } // [T, hidden], [T, 1]
      : undefined;
    return this.experts.forward(ctx, x, logits, out, shared);
  }
}

/** The sparse block of a layer; under tensor parallelism its partial sums are all-reduced once, after the block. */
export function sparseMoeBlock(cfg: ModelConfig, w: WeightLoader, p: string, s: SparseMoeSpec): MLPBlock {
  const block = new SparseMoeBlock(cfg, w, p, s);
  return w.tp.size === 1 ? block : new AllReduced(block, commOf(w.tp));
}

/** A positive integer config key, or an error naming it. */
export function intKey(cfg: ModelConfig, key: string, fallback?: number): number {
  const v = cfg.hfConfig[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new Error(`${cfg.architectures[0]}: config.json needs a positive integer ${key} (got ${JSON.stringify(v)})`);
  }
  return v;
}

/** num_experts (Qwen's Hub configs) or num_local_experts (Mixtral; transformers 5 saves Qwen3-MoE's so). */
export function numExperts(cfg: ModelConfig): number | undefined {
  const v = cfg.hfConfig.num_experts ?? cfg.hfConfig.num_local_experts;
  return typeof v === 'number' ? v : undefined;
}

/**
 * Qwen-MoE's rule for which layers are sparse: not in mlp_only_layers, num_experts > 0
 * and (i + 1) % decoder_sparse_step == 0; the others keep a dense MLP of intermediate_size.
 */
export function qwenSparseLayers(cfg: ModelConfig): boolean[] {
  const hf = cfg.hfConfig;
  const only = new Set(Array.isArray(hf.mlp_only_layers) ? (hf.mlp_only_layers as number[]) : []);
  const step = typeof hf.decoder_sparse_step === 'number' ? hf.decoder_sparse_step : 1;
  const experts = numExperts(cfg) ?? 0;
  return Array.from({ length: cfg.numHiddenLayers }, (_, i) => !only.has(i) && experts > 0 && step > 0 && (i + 1) % step === 0);
}

/** The MLP part of a Qwen-MoE layer (Qwen3-MoE; Qwen2-MoE with its shared expert). */
export function qwenMoeMlp(cfg: ModelConfig, w: WeightLoader, shared: boolean): (i: number, p: string) => MLPBlock {
  const sparse = qwenSparseLayers(cfg);
  return (i, p) => {
    if (!sparse[i]) return new GatedMLP(cfg, w, `${p}.mlp`);
    return sparseMoeBlock(cfg, w, `${p}.mlp`, {
      numExperts: intKey(cfg, 'num_experts', numExperts(cfg)), topK: intKey(cfg, 'num_experts_per_tok'),
      intermediate: intKey(cfg, 'moe_intermediate_size'), renormalize: cfg.hfConfig.norm_topk_prob === true,
      expertNames: ['gate_proj', 'up_proj', 'down_proj'],
      sharedIntermediate: shared ? intKey(cfg, 'shared_expert_intermediate_size') : 0,
    });
  };
}
