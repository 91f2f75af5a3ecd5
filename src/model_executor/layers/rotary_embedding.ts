// Rotary position embedding: a cos/sin table built once on the host (with the
// config's scaling). The attention backend applies it in place to q and k as it
// writes the KV cache (vt_rope_and_cache, vt_qk_norm_rope_and_cache: one launch).
import { Tensor } from '../../native/index.js';
import type { NativeOps } from '../../native/index.js';
import type { RopeConfig } from '../../config/types.js';

/** Inverse frequencies [rotaryDim / 2] after the config's scaling (HF's rope_init functions). */
export function ropeInvFreq(rope: RopeConfig, rotaryDim: number): Float64Array {
  const half = rotaryDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = Math.fround(1 / Math.pow(rope.theta, (2 * i) / rotaryDim));
  switch (rope.type) {
    case 'default':
    case 'linear':
    case 'dynamic':
    case 'longrope': // its per-frequency factors depend on the position: buildCosSinCache
      break;
    case 'llama3': {
      // NOTE: llama3 scaling keeps high frequencies, divides low ones by `factor`,
      // and blends the band in between (wavelengths between the two cut-offs).
      const factor = rope.factor ?? 8;
      const low = rope.lowFreqFactor ?? 1;
      const high = rope.highFreqFactor ?? 4;
      const oldLen = rope.originalMaxPositionEmbeddings ?? 8192;
      const lowWavelen = oldLen / low;
      const highWavelen = oldLen / high;
      for (let i = 0; i < half; i++) {
        const f = inv[i];
        const wavelen = (2 * Math.PI) / f;
        if (wavelen < highWavelen) continue;
        if (wavelen > lowWavelen) {
          inv[i] = f / factor;
        } else {
          const smooth = (oldLen / wavelen - low) / (high - low);
          inv[i] = (1 - smooth) * (f / factor) + smooth * f;
        }
        inv[i] = Math.fround(inv[i]);
      }
      break;
    }
    default:
      throw new Error(`unsupported rope_type '${rope.type}' (supported: default, linear, llama3, longrope)`);
  }
  return inv;
}

/**
 * longrope (Phi-3 "su"): inverse frequencies 1 / (factor_i * theta^(2i / rotaryDim)) with
 * the short factors below original_max_position_embeddings and the long ones from there on.
 * NOTE: HF switches a whole sequence to the long factors once it is longer than the
 * original length; a paged cache cannot re-rotate cached keys, so, as vLLM does, a
 * position's factors depend on the position alone.
 */
function longropeInvFreq(rope: RopeConfig, rotaryDim: number, long: boolean): Float64Array {
  const factors = long ? rope.longFactor! : rope.shortFactor!;
  const half = rotaryDim / 2;
  if (factors.length !== half) {
    throw new Error(`rope ${long ? 'long' : 'short'}_factor has ${factors.length} entries; rotary dim ${rotaryDim} needs ${half}`);
  }
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = Math.fround(1 / Math.fround(factors[i] * Math.fround(Math.pow(rope.theta, (2 * i) / rotaryDim))));
  return inv;
}

/** cos/sin table [maxPosition, rotaryDim]: cos in the first half of a row, sin in the second. */
export function buildCosSinCache(rope: RopeConfig, rotaryDim: number, maxPosition: number): Float32Array {
  const half = rotaryDim / 2;
  const longrope = rope.type === 'longrope';
  const inv = longrope ? longropeInvFreq(rope, rotaryDim, false) : ropeInvFreq(rope, rotaryDim);
  const invLong = longrope ? longropeInvFreq(rope, rotaryDim, true) : inv;
  const original = rope.originalMaxPositionEmbeddings ?? Infinity;
  const mult = longrope ? (rope.attentionFactor ?? 1) : 1;
  const posScale = rope.type === 'linear' ? 1 / (rope.factor ?? 1) : 1;
  const table = new Float32Array(maxPosition * rotaryDim);
  for (let p = 0; p < maxPosition; p++) {
    const t = Math.fround(p * posScale);
    const f = longrope && p >= original ? invLong : inv;
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(t * f[i]); // f32 product, as HF computes it
      table[p * rotaryDim + i] = Math.fround(Math.cos(angle)) * mult;
      table[p * rotaryDim + half + i] = Math.fround(Math.sin(angle)) * mult;
    }
  }
  return table;
}

export class RotaryEmbedding {
  readonly cosSinCache: Tensor; // [maxPosition, rotaryDim] f32
  readonly rotaryDim: number;

  constructor(
    ops: NativeOps,
    rope: RopeConfig,
    readonly headDim: number,
    maxPosition: number,
    readonly isNeox = true,
  ) {
    this.rotaryDim = Math.round(headDim * rope.partialRotaryFactor);
    this.cosSinCache = Tensor.fromF32(ops, buildCosSinCache(rope, this.rotaryDim, maxPosition), [maxPosition, this.rotaryDim]);
  }
}
