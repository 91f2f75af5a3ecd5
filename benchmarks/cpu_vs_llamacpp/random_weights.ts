// A Llama config's weights as a bf16 safetensors checkpoint of seeded random values
// (HF's initialization: linear and embedding weights N(0, 0.02), norm weights 1), so
// that vllm-ts and llama.cpp (through gguf.ts) read the very same bits.
// The same seed gives the same file on every machine (a 32-bit xorshift stream and
// Box-Muller in f64, rounded to bf16).
//   npx tsx benchmarks/cpu_vs_llamacpp/random_weights.ts <config dir> <out dir> [seed]
import { closeSync, copyFileSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

interface LlamaShape {
  hidden_size: number; intermediate_size: number; num_hidden_layers: number; num_attention_heads: number;
  num_key_value_heads?: number; head_dim?: number; vocab_size: number; tie_word_embeddings?: boolean;
}

/** [name, shape, is a norm weight] of every tensor of a Llama checkpoint, in file order. */
function llamaTensors(c: LlamaShape): [string, number[], boolean][] {
  const h = c.hidden_size, H = c.num_attention_heads, KV = c.num_key_value_heads ?? H, D = c.head_dim ?? h / H;
  const t: [string, number[], boolean][] = [['model.embed_tokens.weight', [c.vocab_size, h], false]];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    t.push(
      [`${p}input_layernorm.weight`, [h], true],
      [`${p}self_attn.q_proj.weight`, [H * D, h], false],
      [`${p}self_attn.k_proj.weight`, [KV * D, h], false],
      [`${p}self_attn.v_proj.weight`, [KV * D, h], false],
      [`${p}self_attn.o_proj.weight`, [h, H * D], false],
      [`${p}post_attention_layernorm.weight`, [h], true],
      [`${p}mlp.gate_proj.weight`, [c.intermediate_size, h], false],
      [`${p}mlp.up_proj.weight`, [c.intermediate_size, h], false],
      [`${p}mlp.down_proj.weight`, [h, c.intermediate_size], false],
    );
  }
  t.push(['model.norm.weight', [h], true]);
  if (!c.tie_word_embeddings) t.push(['lm_head.weight', [c.vocab_size, h], false]);
  return t;
}

/** n bf16 values N(0, std) from the xorshift state `s` (advanced in place). */
function normalBf16(n: number, std: number, s: Uint32Array): Uint16Array {
  const out = new Uint16Array(n);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  const next = () => {
    let x = s[0];
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    s[0] = x;
    return (x + 0.5) / 4294967296;  // in (0, 1)
  };
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(next())) * std, a = 2 * Math.PI * next();
    for (let j = 0; j < 2 && i + j < n; j++) {
      f[0] = j === 0 ? r * Math.cos(a) : r * Math.sin(a);
      out[i + j] = (u[0] + 0x7fff + ((u[0] >>> 16) & 1)) >>> 16;  // round to nearest even
    }
  }
  return out;
}

export function writeRandomLlama(configDir: string, outDir: string, seed = 20): void {
  const config = JSON.parse(readFileSync(join(configDir, 'config.json'), 'utf8')) as LlamaShape;
  const tensors = llamaTensors(config);
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', note: `random weights, seed ${seed}` } };
  let offset = 0;
  for (const [name, shape] of tensors) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 2;
    header[name] = { dtype: 'BF16', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  mkdirSync(outDir, { recursive: true });
  const fd = openSync(join(outDir, 'model.safetensors'), 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeSync(fd, len);
    writeSync(fd, Buffer.from(json, 'utf8'));
    const state = new Uint32Array([seed >>> 0 || 1]);
    for (const [, shape, isNorm] of tensors) {
      const n = shape.reduce((a, b) => a * b, 1);
      const bits = isNorm ? new Uint16Array(n).fill(0x3f80) : normalBf16(n, 0.02, state);  // 0x3f80: 1.0
      writeSync(fd, new Uint8Array(bits.buffer));
    }
  } finally {
    closeSync(fd);
  }
  copyFileSync(join(configDir, 'config.json'), join(outDir, 'config.json'));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [configDir, outDir, seed] = process.argv.slice(2);
  if (!configDir || !outDir) throw new Error('usage: random_weights.ts <config dir> <out dir> [seed]');
  writeRandomLlama(configDir, outDir, seed ? Number(seed) : undefined);
  console.log(`wrote ${join(outDir, 'model.safetensors')}`);
}
