// GET /tokenizer_info (vLLM's, behind --enable-tokenizer-info-endpoint since it can
// expose the chat template): the tokenizer's configuration as tokenizer_config.json
// gives it, without file paths, AddedToken objects as their text, plus
// tokenizer_class and the chat template the server uses.
import type { Tokenizer } from '../../tokenizer/tokenizer.js';

/** An AddedToken ({content, lstrip, ...}) reads as its content, as in vLLM's _make_json_serializable. */
function plain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    if (typeof obj.content === 'string') return obj.content;
    return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

/** @param serverChatTemplate --chat-template, when given (it replaces the tokenizer's) */
export function tokenizerInfo(tokenizer: Tokenizer, serverChatTemplate: string | null | undefined): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(tokenizer.tokenizerConfig)) {
    if (key === 'vocab_file' || key === 'merges_file') continue;
    config[key] = plain(value);
  }
  config.tokenizer_class = typeof tokenizer.tokenizerConfig.tokenizer_class === 'string' ? tokenizer.tokenizerConfig.tokenizer_class : 'PreTrainedTokenizerFast';
  const template = serverChatTemplate ?? tokenizer.chatTemplate;
  if (template) config.chat_template = template;
  return config;
}
