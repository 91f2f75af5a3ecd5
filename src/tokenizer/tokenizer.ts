// The tokenizer of a HuggingFace model folder (tokenizer.json + tokenizer_config.json),
// through @huggingface/tokenizers, offline.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import {
  type ApplyChatTemplateOptions,
  type ChatMessage,
  type ChatTemplateSource,
  parseChatTemplateField,
  renderChatTemplate,
  resolveChatTemplate,
} from './chat_template.js';
import { maxCharsPerToken } from './length_bound.js';

type Json = Record<string, unknown>;

const SPECIAL_TOKEN_KEYS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'] as const;

function readJson(path: string): Json {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as Json;
  } catch (e) {
    throw new Error(`${path} is not valid JSON (${(e as Error).message}); re-download the tokenizer files`);
  }
}

/** A special token in tokenizer_config: a string, or an AddedToken object {content, ...}. */
function tokenContent(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object' && typeof (value as Json).content === 'string') {
    return (value as Json).content as string;
  }
  return null;
}

export interface EncodeOptions {
  /** Add the tokens that the post-processor / add_bos_token / add_eos_token add (default true). */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
}

export class Tokenizer {
  /** Number of ids, added tokens included (HF's len(tokenizer)). */
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  readonly padTokenId: number | null;
  readonly allSpecialIds: Set<number>;
  readonly chatTemplate: string | null;
  /** Special tokens as strings, the template variables transformers passes (bos_token, ...). */
  readonly specialTokensMap: Record<string, string | string[]>;
  /** The most characters of input text one token can stand for (Infinity: no bound); see length_bound.ts. */
  readonly maxCharsPerToken: number;
  private readonly hf: HfTokenizer;
  private readonly chatTemplates: ChatTemplateSource;
  /** Corrections to the post-processor for add_bos_token / add_eos_token: +1 add, -1 remove, 0 leave. */
  private readonly bosFix: number;
  private readonly eosFix: number;

  /**
   * @param name the folder (or any label) named in errors
   * @param chatTemplateFile a chat template that overrides tokenizer_config's (chat_template.jinja)
   * @param tokenizerConfig tokenizer_config.json as read (kept for /tokenizer_info)
   */
  constructor(tokenizerJson: Json, readonly tokenizerConfig: Json, readonly name = 'tokenizer', chatTemplateFile: ChatTemplateSource = null) {
    this.hf = new HfTokenizer(tokenizerJson, tokenizerConfig);
    this.maxCharsPerToken = maxCharsPerToken(tokenizerJson);
    const vocab = this.hf.get_vocab(true);
    let maxId = -1;
    for (const id of vocab.values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;

    const map: Record<string, string | string[]> = {};
    for (const key of SPECIAL_TOKEN_KEYS) {
      const content = tokenContent(tokenizerConfig[key]);
      if (content !== null) map[key] = content;
    }
    const additional = Array.isArray(tokenizerConfig.additional_special_tokens)
      ? tokenizerConfig.additional_special_tokens.map(tokenContent).filter((t): t is string => t !== null)
      : [];
    if (additional.length > 0) map.additional_special_tokens = additional;
    this.specialTokensMap = map;

    const idOf = (key: string) => {
      const tok = map[key];
      return typeof tok === 'string' ? (this.hf.token_to_id(tok) ?? null) : null;
    };
    this.bosTokenId = idOf('bos_token');
    this.eosTokenId = idOf('eos_token');
    this.padTokenId = idOf('pad_token');

    this.allSpecialIds = new Set<number>();
    for (const [id, tok] of this.hf.get_added_tokens_decoder()) if (tok.special) this.allSpecialIds.add(id);
    for (const tok of [...SPECIAL_TOKEN_KEYS.map((k) => map[k]), ...additional]) {
      const id = typeof tok === 'string' ? this.hf.token_to_id(tok) : undefined;
      if (id !== undefined) this.allSpecialIds.add(id);
    }

    // NOTE: an explicit add_bos_token / add_eos_token decides whether BOS / EOS are
    // added (as transformers' Llama/Gemma fast tokenizers rebuild their post-processor);
    // we probe what tokenizer.json's post-processor does and correct for it.
    const probeWith = this.hf.encode('a', { add_special_tokens: true }).ids;
    const probeWithout = this.hf.encode('a', { add_special_tokens: false }).ids;
    const postAddsBos = this.bosTokenId !== null && probeWith[0] === this.bosTokenId && probeWithout[0] !== this.bosTokenId;
    const postAddsEos =
      this.eosTokenId !== null && probeWith.at(-1) === this.eosTokenId && probeWithout.at(-1) !== this.eosTokenId;
    const fix = (flag: unknown, adds: boolean, id: number | null) =>
      id === null || typeof flag !== 'boolean' || flag === adds ? 0 : flag ? 1 : -1;
    this.bosFix = fix(tokenizerConfig.add_bos_token, postAddsBos, this.bosTokenId);
    this.eosFix = fix(tokenizerConfig.add_eos_token, postAddsEos, this.eosTokenId);

    this.chatTemplates = chatTemplateFile ?? parseChatTemplateField(tokenizerConfig.chat_template);
    this.chatTemplate =
      typeof this.chatTemplates === 'string' ? this.chatTemplates : (this.chatTemplates?.default ?? null);
  }

  /** Loads tokenizer.json + tokenizer_config.json (+ chat_template.jinja / .json) from a folder. */
  static fromPretrained(dir: string): Tokenizer {
    const tokPath = join(dir, 'tokenizer.json');
    if (!existsSync(tokPath)) {
      throw new Error(`no tokenizer.json in ${dir}: the model folder needs HuggingFace's fast-tokenizer file (pass --tokenizer with a folder that has it)`);
    }
    const cfgPath = join(dir, 'tokenizer_config.json');
    const config = existsSync(cfgPath) ? readJson(cfgPath) : {};
    let template: ChatTemplateSource = null;
    const jinjaPath = join(dir, 'chat_template.jinja');
    const jsonPath = join(dir, 'chat_template.json');
    if (existsSync(jinjaPath)) template = readFileSync(jinjaPath, 'utf8');
    else if (existsSync(jsonPath)) template = parseChatTemplateField(readJson(jsonPath).chat_template);
    return new Tokenizer(readJson(tokPath), config, dir, template);
  }

  encode(text: string, { addSpecialTokens = true }: EncodeOptions = {}): number[] {
    const ids = this.hf.encode(text, { add_special_tokens: addSpecialTokens }).ids;
    if (!addSpecialTokens) return ids;
    if (this.bosFix === 1) ids.unshift(this.bosTokenId!);
    else if (this.bosFix === -1 && ids[0] === this.bosTokenId) ids.shift();
    if (this.eosFix === 1) ids.push(this.eosTokenId!);
    else if (this.eosFix === -1 && ids.at(-1) === this.eosTokenId) ids.pop();
    return ids;
  }

  /**
   * Text of `ids`. Any slice decodes: bytes of a UTF-8 character split across the
   * slice's ends come out as U+FFFD (incremental detokenization relies on that).
   * Ids without a token (e.g. a model's padded vocab rows) are skipped, as HF's
   * Rust decoder does. No clean_up_tokenization_spaces, as vLLM's detokenizer.
   */
  decode(ids: readonly number[], { skipSpecialTokens = false }: DecodeOptions = {}): string {
    const list: number[] = [];
    for (const id of ids) {
      if (skipSpecialTokens && this.allSpecialIds.has(id)) continue;
      if (this.hf.id_to_token(id) !== undefined) list.push(id);
    }
    if (list.length === 0) return '';
    return this.hf.decode(list, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  /** Renders a conversation to the prompt text (tokenize it with addSpecialTokens: false). */
  applyChatTemplate(messages: ChatMessage[], opts: ApplyChatTemplateOptions = {}): string {
    const template = resolveChatTemplate(this.chatTemplates, opts.chatTemplate, (opts.tools?.length ?? 0) > 0, this.name);
    return renderChatTemplate(template, messages, this.specialTokensMap, opts);
  }
}

export { ChatTemplateError } from './chat_template.js';
export type { ApplyChatTemplateOptions, ChatMessage } from './chat_template.js';
