// Reads a fixture's HuggingFace reference (reference.json + reference.safetensors).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WeightSource } from '../../src/model_executor/model_loader/index.js';

export interface RefCase {
  prompt: string;
  promptIds: number[];
  generatedIds: number[];
  generatedText: string;
  logits: Float32Array; // [T, vocab] over promptIds + generatedIds
  hidden: Float32Array; // [T, hidden]
}

export function loadReference(dir: string): RefCase[] {
  const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8'));
  const st = WeightSource.openFile(join(dir, 'reference.safetensors'));
  try {
    return ref.cases.map((c: Record<string, unknown>) => ({
      prompt: c.prompt as string,
      promptIds: c.prompt_ids as number[],
      generatedIds: c.generated_ids as number[],
      generatedText: c.generated_text as string,
      logits: st.readF32(c.logits as string),
      hidden: st.readF32(c.hidden as string),
    }));
  } finally {
    st.close();
  }
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function argmaxRows(x: Float32Array, width: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < x.length / width; r++) {
    let best = 0;
    for (let i = 1; i < width; i++) if (x[r * width + i] > x[r * width + best]) best = i;
    out.push(best);
  }
  return out;
}
