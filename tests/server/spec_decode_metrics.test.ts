// Speculative decoding through the OpenAI server, driven by the official `openai`
// client: the same chat answer with and without --speculative-config, vLLM's
// spec_decode counters on GET /metrics (absent without speculation), and the
// acceptance line of the logging stat logger.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { SpecDecodingLogging } from '../../src/metrics/spec_decode.js';
import { KJV_VERSES } from '../helpers/kjv_prompts.js';
import { startServer, type TestServer } from './helpers.js';

const SPEC = { method: 'ngram', num_speculative_tokens: 3, prompt_lookup_max: 4, prompt_lookup_min: 2 };
let spec: TestServer;
let plain: TestServer;

before(async () => {
  spec = await startServer({}, { speculativeConfig: SPEC });
  plain = await startServer({});
});

after(async () => {
  await spec.server.close();
  await plain.server.close();
});

async function scrape(base: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(vllm:spec_decode_\w+)(\{.*\})? (\S+)$/.exec(line);
    if (!m) continue;
    const pos = /position="(\d+)"/.exec(m[2] ?? '');
    out.set(pos ? `${m[1]}[${pos[1]}]` : m[1], Number(m[3]));
  }
  return out;
}

/** A conversation where the verse was recited once, asking for it again (the model repeats it: drafts get accepted). */
function recite(ref: string, verse: string): OpenAI.Chat.ChatCompletionMessageParam[] {
  return [
    { role: 'user', content: `Recite ${ref}.` },
    { role: 'assistant', content: verse },
    { role: 'user', content: `Recite ${ref}.` },
  ];
}

test('chat completions are the same with and without speculation; /metrics counts the drafts', async () => {
  const answers = async (s: TestServer) => {
    const client = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'none', maxRetries: 0 });
    return Promise.all(KJV_VERSES.slice(0, 3).map(async ([ref, verse]) => {
      const r = await client.chat.completions.create({ model: 'models/tiny-llama-kjv', messages: recite(ref, verse), temperature: 0, max_tokens: 40 });
      return r.choices[0].message.content;
    }));
  };
  const before = await scrape(spec.base);
  assert.equal(before.get('vllm:spec_decode_num_drafts_total'), 0, 'present from the start, at 0');
  assert.deepEqual([0, 1, 2].map((p) => before.get(`vllm:spec_decode_num_accepted_tokens_per_pos_total[${p}]`)), [0, 0, 0]);
  assert.deepEqual(await answers(spec), await answers(plain));

  const m = await scrape(spec.base);
  const drafts = m.get('vllm:spec_decode_num_drafts_total')!;
  const draftTokens = m.get('vllm:spec_decode_num_draft_tokens_total')!;
  const accepted = m.get('vllm:spec_decode_num_accepted_tokens_total')!;
  const perPos = [0, 1, 2].map((p) => m.get(`vllm:spec_decode_num_accepted_tokens_per_pos_total[${p}]`)!);
  assert.ok(drafts > 0 && accepted > 0, `drafts ${drafts}, accepted ${accepted}`);
  assert.ok(draftTokens >= drafts && draftTokens <= 3 * drafts, 'at most K draft tokens per draft');
  assert.ok(accepted <= draftTokens);
  assert.equal(perPos.reduce((a, b) => a + b, 0), accepted, 'per-position counts add up to the accepted tokens');
  assert.ok(perPos[0] >= perPos[1] && perPos[1] >= perPos[2], 'acceptance is a prefix: never more at a later position');
  assert.equal((await scrape(plain.base)).size, 0, 'no spec_decode metrics without speculative decoding');
});

test("the logging stat logger's acceptance line (vLLM's SpecDecoding metrics)", () => {
  const l = new SpecDecodingLogging();
  assert.equal(l.takeLine(), null, 'nothing verified: no line');
  l.observe({ numSpecTokens: 3, numDrafts: 4, numDraftTokens: 10, numAcceptedTokens: 6, numAcceptedTokensPerPos: [3, 2, 1] });
  l.observe({ numSpecTokens: 3, numDrafts: 1, numDraftTokens: 2, numAcceptedTokens: 2, numAcceptedTokensPerPos: [1, 1, 0] });
  const line = l.takeLine()!;
  assert.match(line, /^SpecDecoding metrics: Mean acceptance length: 2\.60, Accepted throughput: [\d.]+ tokens\/s, Drafted throughput: [\d.]+ tokens\/s, /);
  assert.match(line, /Accepted: 8 tokens, Drafted: 12 tokens, Per-position acceptance rate: 0\.800, 0\.600, 0\.200, Avg Draft acceptance rate: 66\.7%$/);
  assert.equal(l.takeLine(), null, 'reset after logging');
});
