// The token ids that end a reasoning model's thinking, for the grammars to start after.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** End-of-reasoning text per --reasoning-parser. */
export const REASONING_END: Record<string, string> = { qwen3: '</think>', deepseek_r1: '</think>' };

/** The ids of `<think>` (if the tokenizer has it) and of `</think>`. */
export function reasoningTokenIds(tokenizerDir: string, parser: string): { start: number[]; end: number[] } {
  const end = reasoningEndTokenIds(tokenizerDir, parser);
  let start: number[] = [];
  try {
    start = tokenIdOf(tokenizerDir, '<think>', parser);
  } catch {
    // A template that opens the block itself needs no start token.
  }
  return { start, end };
}

/**
 * vLLM's is_reasoning_end on a prompt: its last end-of-reasoning token comes after its
 * last start token, i.e. the template closed the think block itself (e.g. Qwen3 with
 * enable_thinking false), so the output has no reasoning.
 */
export function promptEndsReasoning(prompt: readonly number[], ids: { start: readonly number[]; end: readonly number[] }): boolean {
  const last = (set: readonly number[]) => {
    for (let i = prompt.length - 1; i >= 0; i--) if (set.includes(prompt[i]!)) return i;
    return -1;
  };
  const end = last(ids.end);
  return end >= 0 && end > last(ids.start);
}

export function reasoningEndTokenIds(tokenizerDir: string, parser: string): number[] {
  const text = REASONING_END[parser];
  if (text === undefined) throw new Error(`unknown reasoning parser '${parser}' (known: ${Object.keys(REASONING_END).join(', ')})`);
  return tokenIdOf(tokenizerDir, text, parser);
}

function tokenIdOf(tokenizerDir: string, text: string, parser: string): number[] {
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
