// ModelConfig from a HuggingFace model folder: config.json (older keys such as
// torch_dtype / rope_theta / rope_scaling, newer ones such as dtype /
// rope_parameters, and GPT-2's n_* keys) plus generation_config.json.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelConfig, RopeConfig, TorchDtype } from './types.js';

type Json = Record<string, unknown>;

export interface ModelConfigOverrides {
  /** --max-model-len: must not exceed the model's position limit. */
  maxModelLen?: number;
}

/** Model types with learned (absolute) positions instead of rotary embeddings. */
const NO_ROPE_MODEL_TYPES = new Set(['gpt2', 'gpt_bigcode', 'opt']);
/** Model types whose config class defaults tie_word_embeddings to true (HF's PretrainedConfig default). */
const TIED_BY_DEFAULT = new Set(['gpt2', 'gemma', 'gemma2', 'gemma3_text', 'smollm3', 'gpt_bigcode']);
const DTYPE_ALIASES: Record<string, TorchDtype> = {
  float32: 'float32',
  float: 'float32',
  float16: 'float16',
  half: 'float16',
  bfloat16: 'bfloat16',
};

function readJson(path: string, what: string): Json {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path} is not valid JSON (${(e as Error).message}); re-download the model's ${what}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new Error(`${path} must hold a JSON object`);
  }
  return parsed as Json;
}

/** generation_config.json as read; {} when the folder has none. */
export function loadGenerationConfig(dir: string): Json {
  const path = join(dir, 'generation_config.json');
  if (!existsSync(path)) return {};
  return readJson(path, 'generation_config.json');
}

/** Reads `dir`/config.json (+ generation_config.json) into a ModelConfig. */
export function loadModelConfig(dir: string, overrides: ModelConfigOverrides = {}): ModelConfig {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) {
    throw new Error(
      `no config.json in ${dir}: pass the folder of a HuggingFace model (with config.json, *.safetensors and tokenizer.json)`,
    );
  }
  const hf = readJson(path, 'config.json');
  const generationConfig = loadGenerationConfig(dir);
  const modelType = typeof hf.model_type === 'string' ? hf.model_type : '';

  const num = (key: string, value: unknown): number | undefined => {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new Error(`${path}: ${key} must be a number, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  /** The first of `keys` that is set, as a number. */
  const pick = (...keys: string[]): number | undefined => {
    for (const k of keys) {
      const v = num(k, hf[k]);
      if (v !== undefined) return v;
    }
    return undefined;
  };
  const required = (...keys: string[]): number => {
    const v = pick(...keys);
    if (v === undefined) throw new Error(`${path}: missing ${keys.join(' / ')}`);
    return v;
  };

  const hiddenSize = required('hidden_size', 'n_embd');
  const numAttentionHeads = required('num_attention_heads', 'n_head');
  const numKeyValueHeads = pick('num_key_value_heads', 'num_kv_heads') ?? numAttentionHeads;
  const headDim = pick('head_dim') ?? hiddenSize / numAttentionHeads;
  if (!Number.isInteger(headDim)) {
    throw new Error(`${path}: hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numAttentionHeads}; set head_dim`);
  }
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    throw new Error(`${path}: num_attention_heads ${numAttentionHeads} is not a multiple of num_key_value_heads ${numKeyValueHeads}`);
  }
  // NOTE: GPT-2's n_inner is null in most configs and means 4 * n_embd.
  const intermediateSize = pick('intermediate_size', 'n_inner') ?? (modelType === 'gpt2' ? 4 * hiddenSize : undefined);
  if (intermediateSize === undefined) throw new Error(`${path}: missing intermediate_size`);

  const maxKey = ['max_position_embeddings', 'n_positions', 'max_sequence_length', 'seq_length'].find(
    (k) => hf[k] !== undefined && hf[k] !== null,
  );
  if (maxKey === undefined) throw new Error(`${path}: missing max_position_embeddings`);
  const maxPositionEmbeddings = required(maxKey);

  let maxModelLen = maxPositionEmbeddings;
  if (overrides.maxModelLen !== undefined) {
    const m = overrides.maxModelLen;
    if (!Number.isInteger(m) || m <= 0) throw new Error(`max_model_len must be a positive integer, got ${m}`);
    if (m > maxPositionEmbeddings) {
      throw new Error(
        `User-specified max_model_len (${m}) is greater than the derived max_model_len ` +
          `(${maxKey}=${maxPositionEmbeddings} in model's config.json). ` +
          `Use --max-model-len ${maxPositionEmbeddings} or less.`,
      );
    }
    maxModelLen = m;
  }

  const rawDtype = hf.torch_dtype ?? hf.dtype ?? 'float32';
  const dtype = typeof rawDtype === 'string' ? DTYPE_ALIASES[rawDtype] : undefined;
  if (dtype === undefined) {
    throw new Error(`${path}: unsupported dtype ${JSON.stringify(rawDtype)} (supported: float32, float16, bfloat16)`);
  }

  const sliding = num('sliding_window', hf.sliding_window) ?? null;
  // Qwen's (qwen2, qwen2_moe, qwen3, qwen3_moe) use_sliding_window: false drops the window.
  const slidingWindow = hf.use_sliding_window === false ? null : sliding;

  return {
    model: dir,
    architectures: Array.isArray(hf.architectures) ? (hf.architectures as string[]) : [],
    modelType,
    hfConfig: hf,
    dtype,
    vocabSize: required('vocab_size'),
    hiddenSize,
    intermediateSize,
    numHiddenLayers: required('num_hidden_layers', 'n_layer'),
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    maxPositionEmbeddings,
    rmsNormEps: pick('rms_norm_eps', 'layer_norm_epsilon', 'layer_norm_eps') ?? (modelType === 'gpt2' ? 1e-5 : 1e-6),
    rope: NO_ROPE_MODEL_TYPES.has(modelType) ? null : parseRope(hf, path),
    tieWordEmbeddings: typeof hf.tie_word_embeddings === 'boolean' ? hf.tie_word_embeddings : TIED_BY_DEFAULT.has(modelType),
    hiddenAct: hiddenActivation(hf, modelType),
    // NOTE: Qwen2 has q/k/v biases without an attention_bias key; GPT-2 has biases everywhere.
    attentionBias: typeof hf.attention_bias === 'boolean' ? hf.attention_bias
      : modelType === 'qwen2_moe' ? hf.qkv_bias !== false // Qwen2-MoE's q/k/v bias key
      : modelType === 'qwen2' || modelType === 'gpt2',
    slidingWindow,
    maxModelLen,
    bosTokenId: num('bos_token_id', hf.bos_token_id) ?? num('bos_token_id', generationConfig.bos_token_id) ?? null,
    eosTokenIds: mergeIds(hf.eos_token_id, generationConfig.eos_token_id),
    generationConfig,
  };
}

function hiddenActivation(hf: Json, modelType: string): string {
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  if (modelType === 'gpt2') return str(hf.activation_function) ?? 'gelu_new';
  // HF Gemma (1, 2, 3) reads hidden_activation and falls back to the tanh GELU (not hidden_act).
  if (modelType === 'gemma' || modelType === 'gemma2' || modelType === 'gemma3_text') return str(hf.hidden_activation) ?? 'gelu_pytorch_tanh';
  return str(hf.hidden_activation) ?? str(hf.hidden_act) ?? 'silu';
}

function mergeIds(...values: unknown[]): number[] {
  const out: number[] = [];
  for (const v of values) {
    const list = Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
    for (const id of list) if (typeof id === 'number' && !out.includes(id)) out.push(id);
  }
  return out;
}

const obj = (v: unknown): Json | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;

/**
 * The rope of one layer type ('full_attention' | 'sliding_attention') of a config
 * with per-layer-type parameters (Gemma 3): rope_parameters[layerType] in the newer
 * layout; in the older one, rope_theta + rope_scaling for full attention and
 * rope_local_base_freq (no scaling) for sliding layers.
 */
export function parseLayerTypeRope(hf: Json, path: string, layerType: string): RopeConfig {
  const params = obj(hf.rope_parameters);
  if (params && obj(params[layerType])) return parseRope({ ...hf, rope_parameters: params[layerType] }, path);
  if (layerType === 'sliding_attention' && typeof hf.rope_local_base_freq === 'number') {
    return parseRope({ ...hf, rope_parameters: undefined, rope_scaling: undefined, rope_theta: hf.rope_local_base_freq }, path);
  }
  return parseRope(hf, path);
}

/** Normalizes rope_parameters, or rope_theta + rope_scaling, into a RopeConfig. */
function parseRope(hf: Json, path: string): RopeConfig {
  let params = obj(hf.rope_parameters);
  // Per-layer-type parameters (e.g. {full_attention: {...}, sliding_attention: {...}}): use full attention's.
  if (params && params.rope_theta === undefined && obj(params.full_attention)) params = obj(params.full_attention);
  const scaling = params ?? obj(hf.rope_scaling) ?? {};
  const theta = params?.rope_theta ?? hf.rope_theta ?? 10000;
  if (typeof theta !== 'number' || !(theta > 0)) throw new Error(`${path}: rope_theta must be a positive number, got ${JSON.stringify(theta)}`);
  let type = String(scaling.rope_type ?? scaling.type ?? 'default');
  // Phi-3's older configs name longrope 'su' (and some 'yarn' with long/short factors), as HF maps them.
  if (type === 'su' || (type === 'yarn' && Array.isArray(scaling.long_factor))) type = 'longrope';
  const partial = scaling.partial_rotary_factor ?? hf.partial_rotary_factor ?? 1;
  if (typeof partial !== 'number' || !(partial > 0 && partial <= 1)) {
    throw new Error(`${path}: partial_rotary_factor must be in (0, 1], got ${JSON.stringify(partial)}`);
  }
  const rope: RopeConfig = { theta, type, partialRotaryFactor: partial };
  const field = (key: string): number | undefined => {
    const v = scaling[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number') throw new Error(`${path}: rope ${key} must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  rope.factor = field('factor');
  rope.lowFreqFactor = field('low_freq_factor');
  rope.highFreqFactor = field('high_freq_factor');
  rope.originalMaxPositionEmbeddings = field('original_max_position_embeddings');
  if (type === 'longrope') {
    // Phi-3 keeps original_max_position_embeddings at the top level of config.json.
    rope.originalMaxPositionEmbeddings ??= typeof hf.original_max_position_embeddings === 'number' ? hf.original_max_position_embeddings : undefined;
    const list = (key: string): number[] | undefined => {
      const v = scaling[key];
      if (v === undefined || v === null) return undefined;
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'number')) throw new Error(`${path}: rope ${key} must be a list of numbers`);
      return v as number[];
    };
    rope.shortFactor = list('short_factor');
    rope.longFactor = list('long_factor');
    rope.attentionFactor = field('attention_factor');
    const maxPos = hf.max_position_embeddings;
    if (rope.attentionFactor === undefined && rope.originalMaxPositionEmbeddings !== undefined && typeof maxPos === 'number') {
      // HF: factor = max / original positions unless given; attention_factor = sqrt(1 + ln(factor) / ln(original)).
      const factor = rope.factor ?? maxPos / rope.originalMaxPositionEmbeddings;
      rope.attentionFactor = factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(rope.originalMaxPositionEmbeddings));
    }
  }
  for (const k of ['factor', 'lowFreqFactor', 'highFreqFactor', 'originalMaxPositionEmbeddings', 'shortFactor', 'longFactor', 'attentionFactor'] as const) {
    if (rope[k] === undefined) delete rope[k];
  }
  const needs: Record<string, (keyof RopeConfig)[]> = {
    llama3: ['factor', 'lowFreqFactor', 'highFreqFactor', 'originalMaxPositionEmbeddings'],
    linear: ['factor'],
    longrope: ['shortFactor', 'longFactor', 'originalMaxPositionEmbeddings'],
  };
  for (const k of needs[type] ?? []) {
    if (rope[k] === undefined) throw new Error(`${path}: rope_type ${type} needs ${snake(k)}`);
  }
  return rope;
}

function snake(s: string): string {
  return s.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}
