// The table of benchmarks/tp_h200.sh: every JSON result in DIR (bench latency /
// bench throughput with tensor_parallel_size), each beside its batch-1 floor and,
// for TP=2, its ratio to the TP=1 run of the same workload.
//   node benchmarks/tp_table.mjs DIR [--membw-tbs 4.29]
// Also: node benchmarks/tp_table.mjs --floor CONFIG.json TP [--membw-tbs 4.29] prints
// the floor arithmetic alone (what docs/benchmarks.md quotes).
// Floor of a batch-1 decode step: the bf16 weights one GPU reads (its 1/TP of every
// layer's q/k/v/o and gate/up/down, and of the LM head; the embedding gathers one row)
// over the GPU's copy bandwidth (4.29 TB/s measured on the H200). Collectives are not
// in the floor: 2 all-reduces a layer plus the logits' all-gather add their latency.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const bwAt = args.indexOf('--membw-tbs');
const BW = (bwAt >= 0 ? Number(args[bwAt + 1]) : 4.29) * 1e12; // bytes/s

/** Bytes one GPU reads per decode step (bf16) and the per-GPU weight bytes held, for `tp` ranks. */
export function weightBytes(cfg, tp) {
  const h = cfg.hidden_size;
  const H = cfg.num_attention_heads;
  const KV = cfg.num_key_value_heads ?? H;
  const D = cfg.head_dim ?? h / H;
  const ffn = cfg.intermediate_size;
  const V = cfg.vocab_size;
  const kvLocal = Math.max(1, KV / tp); // replicated below one KV head a rank
  const layer = h * (H / tp) * D + 2 * h * kvLocal * D + (H / tp) * D * h + 3 * h * (ffn / tp); // q, k+v, o, gate+up+down
  const head = Math.ceil(V / tp) * h;
  const read = 2 * (cfg.num_hidden_layers * layer + head);
  const held = read + 2 * (cfg.tie_word_embeddings ? 0 : Math.ceil(V / tp) * h);
  return { read, held };
}

if (args[0] === '--floor') {
  const cfg = JSON.parse(readFileSync(args[1], 'utf8'));
  const tp = Number(args[2]);
  const { read, held } = weightBytes(cfg, tp);
  const L = cfg.num_hidden_layers;
  console.log(`${args[1]} at TP=${tp}: ${(held / 1e9).toFixed(2)} GB of weights per GPU, ${(read / 1e9).toFixed(2)} GB read per decode step, ` +
    `floor ${((read / BW) * 1e3).toFixed(2)} ms at ${(BW / 1e12).toFixed(2)} TB/s; ${tp > 1 ? `${2 * L + 1} all-reduces + 1 all-gather a step` : 'no collectives'}`);
  process.exit(0);
}

const dir = args[0];
const rows = readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => ({ file: f, ...JSON.parse(readFileSync(join(dir, f), 'utf8')) }));
// The command is `bench <latency|throughput> MODEL ...`; the round is in the file name (-rN.json).
const modelOf = (r) => String(r.command).split(' ')[2];
const roundOf = (r) => Number(/-r(\d+)\.json$/.exec(r.file)?.[1] ?? 0);
const configOf = (r) => JSON.parse(readFileSync(join(modelOf(r), 'config.json'), 'utf8'));
const key = (r) => `${r.benchmark} ${modelOf(r)} ${r.input_len}/${r.output_len}${r.batch_size ? ` bs ${r.batch_size}` : ''}`;
const metric = (r) => (r.benchmark === 'latency' ? r.avg_tpot * 1e3 : r.requests_per_second);
console.log('| workload | round | TP | result | speed / TP=1 (same round) | batch-1 floor | × floor |');
console.log('|---|---|---|---|---|---|---|');
const order = (a, b) => key(a).localeCompare(key(b)) || roundOf(a) - roundOf(b) || (a.tensor_parallel_size ?? 1) - (b.tensor_parallel_size ?? 1);
for (const r of rows.sort(order)) {
  const tp = r.tensor_parallel_size ?? 1;
  const floor = (weightBytes(configOf(r), tp).read / BW) * 1e3;
  const one = rows.find((o) => key(o) === key(r) && roundOf(o) === roundOf(r) && (o.tensor_parallel_size ?? 1) === 1);
  const ratio = one && tp > 1 ? (r.benchmark === 'latency' ? metric(one) / metric(r) : metric(r) / metric(one)) : NaN;
  const result = r.benchmark === 'latency'
    ? `TPOT ${metric(r).toFixed(2)} ms, TTFT ${(r.avg_ttft * 1e3).toFixed(1)} ms, batch ${(r.avg_latency * 1e3).toFixed(0)} ms`
    : `${metric(r).toFixed(2)} req/s, ${r.output_tokens_per_second.toFixed(0)} output tok/s`;
  const bs1 = r.benchmark === 'latency' && r.batch_size === 1;
  console.log(`| ${key(r)} | ${roundOf(r) || '–'} | ${tp} | ${result} | ${Number.isNaN(ratio) ? '–' : ratio.toFixed(2)} | ` +
    `${bs1 ? `${floor.toFixed(2)} ms` : '–'} | ${bs1 ? (metric(r) / floor).toFixed(2) : '–'} |`);
}
