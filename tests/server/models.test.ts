// `vllm-ts serve` runs every supported architecture: each fixture model behind the
// real server answers a greedy completion with HuggingFace's continuation.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadCompactReference } from '../helpers/compact_reference.js';
import { startServer } from './helpers.js';

const MODELS = ['llama-gqa-fp16', 'qwen2-bf16', 'gemma-fp32', 'gpt2-fp32', 'mistral-swa-fp16', 'qwen3-bf16', 'llama-mqa-hd128-bf16'];

for (const name of MODELS) {
  test(`serve ${name}: greedy completion equals HF's continuation`, async () => {
    const dir = `tests/fixtures/${name}`;
    const c = loadCompactReference(dir).cases[0];
    const s = await startServer({}, { model: dir, tokenizer: 'models/tiny-llama-kjv', maxModelLen: 256 });
    try {
      const models = (await (await fetch(`${s.base}/v1/models`)).json()) as { data: { id: string }[] };
      assert.equal(models.data[0].id, dir);
      const n = Math.min(8, c.generatedIds.length);
      const res = await fetch(`${s.base}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: c.promptIds, max_tokens: n, temperature: 0, ignore_eos: true, return_token_ids: true }),
      });
      assert.equal(res.status, 200);
      const body = (await res.json()) as { choices: { token_ids: number[] }[] };
      assert.deepEqual(body.choices[0].token_ids, c.generatedIds.slice(0, n));
    } finally {
      await s.server.close();
      await s.engine.shutdown();
    }
  });
}
