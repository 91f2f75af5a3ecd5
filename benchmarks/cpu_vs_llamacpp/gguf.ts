// A Llama safetensors checkpoint -> a bf16 GGUF (version 3) that llama.cpp loads:
// the "llama" architecture's metadata and tensor names, matrices in bf16 (the
// checkpoint's own bits when it is bf16), 1-D norm weights in f32, and the byte-level
// BPE tokenizer of a tokenizer.json as llama.cpp's "gpt2" vocabulary.
// NOTE: HF's q_proj / k_proj rows are ordered for rotate-half RoPE (the two halves of
// each head apart); llama.cpp's LLAMA architecture rotates adjacent pairs, so the
// rows of each head are interleaved here (row h*D + 2i <- h*D + i, row h*D + 2i + 1
// <- h*D + D/2 + i), as llama.cpp's own converter does.
//   npx tsx benchmarks/cpu_vs_llamacpp/gguf.ts <model dir> <out.gguf> [tokenizer dir]
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { f32ToBf16 } from '../../src/native/dtype.js';
import { WeightSource } from '../../src/model_executor/model_loader/safetensors.js';

const GGUF_VERSION = 3;
const ALIGNMENT = 32;
enum Kv { U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9 }
const GGML_F32 = 0;
const GGML_BF16 = 30;
const LLAMA_FTYPE_MOSTLY_BF16 = 32;
// llama.cpp's token types
const TOKEN_NORMAL = 1;
const TOKEN_CONTROL = 3;
const TOKEN_UNUSED = 5;

type Value =
  | { t: Kv.U32 | Kv.I32 | Kv.F32; v: number }
  | { t: Kv.BOOL; v: boolean }
  | { t: Kv.STRING; v: string }
  | { t: Kv.ARRAY; elem: Kv.STRING; v: string[] }
  | { t: Kv.ARRAY; elem: Kv.I32; v: Int32Array };

/** Little-endian byte sink that grows as it is written. */
class Bytes {
  private buf = Buffer.alloc(1 << 20);
  length = 0;
  private room(n: number) {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u32(x: number) { this.room(4); this.buf.writeUInt32LE(x, this.length); this.length += 4; }
  i32(x: number) { this.room(4); this.buf.writeInt32LE(x, this.length); this.length += 4; }
  u64(x: number) { this.room(8); this.buf.writeBigUInt64LE(BigInt(x), this.length); this.length += 8; }
  f32(x: number) { this.room(4); this.buf.writeFloatLE(x, this.length); this.length += 4; }
  u8(x: number) { this.room(1); this.buf[this.length++] = x; }
  str(s: string) {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.room(b.length);
    b.copy(this.buf, this.length);
    this.length += b.length;
  }
  pad(align: number) { while (this.length % align) this.u8(0); }
  bytes(): Buffer { return this.buf.subarray(0, this.length); }
}

function writeValue(out: Bytes, val: Value): void {
  out.u32(val.t);
  switch (val.t) {
    case Kv.U32: return out.u32(val.v);
    case Kv.I32: return out.i32(val.v);
    case Kv.F32: return out.f32(val.v);
    case Kv.BOOL: return out.u8(val.v ? 1 : 0);
    case Kv.STRING: return out.str(val.v);
    case Kv.ARRAY:
      out.u32(val.elem);
      out.u64(val.v.length);
      if (val.elem === Kv.STRING) for (const s of val.v as string[]) out.str(s);
      else for (const x of val.v as Int32Array) out.i32(x);
  }
}

interface HfConfig {
  hidden_size: number; intermediate_size: number; num_hidden_layers: number; num_attention_heads: number;
  num_key_value_heads?: number; head_dim?: number; rms_norm_eps: number; rope_theta?: number; vocab_size: number;
  max_position_embeddings: number; tie_word_embeddings?: boolean; bos_token_id?: number; eos_token_id?: number | number[];
  pad_token_id?: number;
}

/** tokenizer.json's byte-level BPE as llama.cpp's gpt2 vocabulary, padded to `vocabSize` with unused tokens. */
function vocabulary(tokenizerDir: string, vocabSize: number): { tokens: string[]; types: Int32Array; merges: string[] } {
  const tj = JSON.parse(readFileSync(join(tokenizerDir, 'tokenizer.json'), 'utf8'));
  if (tj.model?.type !== 'BPE') throw new Error(`${tokenizerDir}: only byte-level BPE tokenizers are converted`);
  const tokens: string[] = Array.from({ length: vocabSize }, (_, i) => `<unused_${i}>`);
  const types = new Int32Array(vocabSize).fill(TOKEN_UNUSED);
  for (const [tok, id] of Object.entries(tj.model.vocab as Record<string, number>)) {
    if (id < vocabSize) { tokens[id] = tok; types[id] = TOKEN_NORMAL; }
  }
  for (const a of tj.added_tokens ?? []) {
    if (a.id < vocabSize) { tokens[a.id] = a.content; types[a.id] = a.special ? TOKEN_CONTROL : TOKEN_NORMAL; }
  }
  const merges = (tj.model.merges as (string | [string, string])[]).map((m) => (typeof m === 'string' ? m : m.join(' ')));
  return { tokens, types, merges };
}

/** Interleaves the two rotate-half halves of each head's rows (see the NOTE above). */
function interleaveHeads(bits: Uint16Array, heads: number, headDim: number, cols: number): Uint16Array {
  const out = new Uint16Array(bits.length);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      out.set(bits.subarray((h * headDim + i) * cols, (h * headDim + i + 1) * cols), (h * headDim + 2 * i) * cols);
      out.set(bits.subarray((h * headDim + half + i) * cols, (h * headDim + half + i + 1) * cols), (h * headDim + 2 * i + 1) * cols);
    }
  }
  return out;
}

interface OutTensor { name: string; shape: number[]; type: number; data: () => Uint8Array }

export function convertToGguf(modelDir: string, outPath: string, tokenizerDir = modelDir): void {
  const c = JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8')) as HfConfig;
  const H = c.num_attention_heads, KV = c.num_key_value_heads ?? H, D = c.head_dim ?? c.hidden_size / H;
  const w = WeightSource.open(modelDir);
  const bf16Of = (name: string): Uint16Array => {
    const info = w.info(name);
    const raw = w.read(name);
    if (info.dtype === 'BF16') return new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2);
    if (info.dtype === 'F32') return f32ToBf16(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4));
    throw new Error(`${name}: ${info.dtype} weights are not converted (bf16 or f32 only)`);
  };
  const f32Of = (name: string): Float32Array => {
    const info = w.info(name);
    const raw = w.read(name);
    if (info.dtype === 'F32') return new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    const bits = bf16Of(name);
    const out = new Float32Array(bits.length);
    new Uint32Array(out.buffer).set(Array.from(bits, (b) => b << 16));
    return out;
  };
  const u8 = (a: Uint16Array | Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const mat = (gg: string, hf: string, permuteHeads = 0): OutTensor => ({
    name: gg, shape: w.info(hf).shape, type: GGML_BF16,
    data: () => u8(permuteHeads ? interleaveHeads(bf16Of(hf), permuteHeads, D, w.info(hf).shape[1]) : bf16Of(hf)),
  });
  const vec = (gg: string, hf: string): OutTensor => ({ name: gg, shape: w.info(hf).shape, type: GGML_F32, data: () => u8(f32Of(hf)) });

  const tensors: OutTensor[] = [mat('token_embd.weight', 'model.embed_tokens.weight'), vec('output_norm.weight', 'model.norm.weight')];
  if (!c.tie_word_embeddings && w.has('lm_head.weight')) tensors.push(mat('output.weight', 'lm_head.weight'));
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`, b = `blk.${l}.`;
    tensors.push(
      vec(`${b}attn_norm.weight`, `${p}input_layernorm.weight`),
      mat(`${b}attn_q.weight`, `${p}self_attn.q_proj.weight`, H),
      mat(`${b}attn_k.weight`, `${p}self_attn.k_proj.weight`, KV),
      mat(`${b}attn_v.weight`, `${p}self_attn.v_proj.weight`),
      mat(`${b}attn_output.weight`, `${p}self_attn.o_proj.weight`),
      vec(`${b}ffn_norm.weight`, `${p}post_attention_layernorm.weight`),
      mat(`${b}ffn_gate.weight`, `${p}mlp.gate_proj.weight`),
      mat(`${b}ffn_up.weight`, `${p}mlp.up_proj.weight`),
      mat(`${b}ffn_down.weight`, `${p}mlp.down_proj.weight`),
    );
  }

  const vocab = vocabulary(tokenizerDir, c.vocab_size);
  const eos = Array.isArray(c.eos_token_id) ? c.eos_token_id[0] : c.eos_token_id ?? 0;
  const kv: [string, Value][] = [
    ['general.architecture', { t: Kv.STRING, v: 'llama' }],
    ['general.name', { t: Kv.STRING, v: modelDir.split('/').filter(Boolean).pop()! }],
    ['general.file_type', { t: Kv.U32, v: LLAMA_FTYPE_MOSTLY_BF16 }],
    ['llama.context_length', { t: Kv.U32, v: c.max_position_embeddings }],
    ['llama.embedding_length', { t: Kv.U32, v: c.hidden_size }],
    ['llama.block_count', { t: Kv.U32, v: c.num_hidden_layers }],
    ['llama.feed_forward_length', { t: Kv.U32, v: c.intermediate_size }],
    ['llama.attention.head_count', { t: Kv.U32, v: H }],
    ['llama.attention.head_count_kv', { t: Kv.U32, v: KV }],
    ['llama.attention.key_length', { t: Kv.U32, v: D }],
    ['llama.attention.value_length', { t: Kv.U32, v: D }],
    ['llama.rope.dimension_count', { t: Kv.U32, v: D }],
    ['llama.rope.freq_base', { t: Kv.F32, v: c.rope_theta ?? 10000 }],
    ['llama.attention.layer_norm_rms_epsilon', { t: Kv.F32, v: c.rms_norm_eps }],
    ['llama.vocab_size', { t: Kv.U32, v: c.vocab_size }],
    ['tokenizer.ggml.model', { t: Kv.STRING, v: 'gpt2' }],
    ['tokenizer.ggml.pre', { t: Kv.STRING, v: 'gpt-2' }],
    ['tokenizer.ggml.tokens', { t: Kv.ARRAY, elem: Kv.STRING, v: vocab.tokens }],
    ['tokenizer.ggml.token_type', { t: Kv.ARRAY, elem: Kv.I32, v: vocab.types }],
    ['tokenizer.ggml.merges', { t: Kv.ARRAY, elem: Kv.STRING, v: vocab.merges }],
    ['tokenizer.ggml.bos_token_id', { t: Kv.U32, v: c.bos_token_id ?? eos }],
    ['tokenizer.ggml.eos_token_id', { t: Kv.U32, v: eos }],
    ['tokenizer.ggml.padding_token_id', { t: Kv.U32, v: c.pad_token_id ?? eos }],
    ['tokenizer.ggml.add_bos_token', { t: Kv.BOOL, v: false }],
  ];

  // Header: magic, version, counts, key/values, tensor infos (dims innermost first,
  // offsets into the aligned data section), padding.
  const head = new Bytes();
  for (const ch of 'GGUF') head.u8(ch.charCodeAt(0));
  head.u32(GGUF_VERSION);
  head.u64(tensors.length);
  head.u64(kv.length);
  for (const [k, v] of kv) { head.str(k); writeValue(head, v); }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    head.str(t.name);
    head.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) head.u64(d);
    head.u32(t.type);
    head.u64(offset);
    offsets.push(offset);
    const bytes = t.shape.reduce((a, b) => a * b, 1) * (t.type === GGML_F32 ? 4 : 2);
    offset += Math.ceil(bytes / ALIGNMENT) * ALIGNMENT;
  }
  head.pad(ALIGNMENT);
  const fd = openSync(outPath, 'w');
  try {
    writeSync(fd, head.bytes());
    const dataStart = head.length;
    tensors.forEach((t, i) => {
      const data = t.data();
      writeSync(fd, data, 0, data.length, dataStart + offsets[i]);
      const end = offsets[i] + data.length;
      const padded = Math.ceil(end / ALIGNMENT) * ALIGNMENT;
      if (padded > end) writeSync(fd, Buffer.alloc(padded - end), 0, padded - end, dataStart + end);
    });
  } finally {
    closeSync(fd);
    w.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [modelDir, out, tok] = process.argv.slice(2);
  if (!modelDir || !out) throw new Error('usage: gguf.ts <model dir> <out.gguf> [tokenizer dir]');
  if (!existsSync(modelDir)) throw new Error(`${modelDir}: no such model folder`);
  convertToGguf(modelDir, out, tok);
  console.log(`wrote ${out}`);
}
