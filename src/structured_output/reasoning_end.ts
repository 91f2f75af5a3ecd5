// The token ids that end a reasoning model's thinking, for the grammars to start after.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** End-of-reasoning text per --reasoning-parser. */
export const REASONING_END: Record<string, string> = { qwen3: '</think>', deepseek_r1: '</think>' };

export function reasoningEndTokenIds(tokenizerDir: string, parser: string): number[] {
  const text = REASONING_END[parser];
  if (text === undefined) throw new Error(`unknown reasoning parser '${parser}' (known: ${Object.keys(REASONING_END).join(', ')})`);
  const tj = JSON.parse(readFileSync(join(tokenizerDir, 'tokenizer.json'), 'utf8')) as {
    added_tokens?: { id: number; content: string }[];
    model: { vocab: Record<string, number> | unknown[] };
  };
  const added = tj.added_tokens?.find((t) => t.content === text);
  if (added) return [added.id];
  const vocab = tj.model.vocab;
  const id = Array.isArray(vocab) ? -1 : (vocab as Record<string, number>)[text];
  if (id === undefined || id < 0) {
    throw new Error(`--reasoning-parser ${parser}: the tokenizer has no '${text}' token`);
  }
  return [id];
}
