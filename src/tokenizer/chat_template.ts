// Chat templates: choosing the template and rendering it with @huggingface/jinja
// and the variables that transformers' apply_chat_template passes (raise_exception
// and strftime_now are @huggingface/jinja's own globals).
import { Template } from '@huggingface/jinja';

export interface ChatMessage {
  role: string;
  /** A string, or OpenAI-style content parts ({type: 'text', text}, ...). */
  content?: string | Record<string, unknown>[] | null;
  [key: string]: unknown;
}

/** tokenizer_config.json's chat_template: one template, or named ones ([{name, template}]). */
export type ChatTemplateSource = string | Record<string, string> | null;

export interface ApplyChatTemplateOptions {
  addGenerationPrompt?: boolean;
  /** Leave the final (assistant) message open so that the model continues it. */
  continueFinalMessage?: boolean;
  /** A template string, or the name of one of the tokenizer's named templates. */
  chatTemplate?: string | null;
  tools?: Record<string, unknown>[] | null;
  documents?: Record<string, unknown>[] | null;
  /** Extra template variables (vLLM's chat_template_kwargs, e.g. enable_thinking). */
  chatTemplateKwargs?: Record<string, unknown>;
}

export class ChatTemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChatTemplateError';
  }
}

/** Normalizes tokenizer_config's chat_template field. */
export function parseChatTemplateField(value: unknown): ChatTemplateSource {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named: Record<string, string> = {};
    for (const t of value as { name?: unknown; template?: unknown }[]) {
      if (typeof t?.name === 'string' && typeof t.template === 'string') named[t.name] = t.template;
    }
    return named;
  }
  return null;
}

/** Picks the template to render, as transformers' get_chat_template does. */
export function resolveChatTemplate(
  source: ChatTemplateSource,
  override: string | null | undefined,
  hasTools: boolean,
  owner: string,
): string {
  const named = source !== null && typeof source === 'object' ? source : null;
  if (override) return named?.[override] ?? override;
  if (named) {
    const pick = (hasTools ? named.tool_use : undefined) ?? named.default;
    if (pick !== undefined) return pick;
    throw new ChatTemplateError(
      `${owner} has several chat templates (${Object.keys(named).join(', ')}) and none is named "default"; pass chatTemplate / --chat-template with one's name`,
    );
  }
  if (typeof source === 'string') return source;
  throw new ChatTemplateError(`${owner} has no chat template; pass chatTemplate / --chat-template`);
}

/** @huggingface/jinja's globals: a template variable of the same name would be refused. */
const JINJA_GLOBALS = new Set(['raise_exception', 'strftime_now', 'range', 'namespace', 'true', 'false', 'none', 'True', 'False', 'None']);

const compiled = new Map<string, Template>();

function compile(template: string): Template {
  let t = compiled.get(template);
  if (!t) {
    try {
      t = new Template(template);
    } catch (e) {
      throw new ChatTemplateError(`chat template does not parse: ${(e as Error).message}`);
    }
    if (compiled.size > 32) compiled.clear();
    compiled.set(template, t);
  }
  return t;
}

/** The text of the final message, the part that continueFinalMessage leaves open. */
function finalMessageText(messages: ChatMessage[]): string {
  const content = messages[messages.length - 1].content;
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    for (let i = content.length - 1; i >= 0; i--) {
      if (typeof content[i].text === 'string') return content[i].text as string;
    }
  }
  throw new ChatTemplateError('continue_final_message is set but the final message has no text to continue');
}

/**
 * Renders `messages` with `template`. `specialTokens` holds the tokenizer's special
 * tokens as strings (bos_token, eos_token, ...), as in transformers' special_tokens_map.
 */
export function renderChatTemplate(
  template: string,
  messages: ChatMessage[],
  specialTokens: Record<string, string | string[]>,
  opts: ApplyChatTemplateOptions = {},
): string {
  const { addGenerationPrompt = false, continueFinalMessage = false } = opts;
  if (addGenerationPrompt && continueFinalMessage) {
    throw new ChatTemplateError(
      'continue_final_message and add_generation_prompt are not compatible. Use continue_final_message when you want the model ' +
        'to continue the final message, and add_generation_prompt when you want to add a header that will prompt it to start a new assistant message instead.',
    );
  }
  if (continueFinalMessage && messages.length === 0) {
    throw new ChatTemplateError('continue_final_message is set but there are no messages');
  }
  const kwargs = Object.entries(opts.chatTemplateKwargs ?? {}).filter(([k]) => !JINJA_GLOBALS.has(k));
  const vars: Record<string, unknown> = {
    ...specialTokens,
    ...Object.fromEntries(kwargs),
    messages,
    tools: opts.tools ?? null,
    documents: opts.documents ?? null,
    add_generation_prompt: addGenerationPrompt,
  };
  let rendered: string;
  try {
    rendered = compile(template).render(vars);
  } catch (e) {
    // raise_exception(msg) (a global of @huggingface/jinja, as in transformers) lands here with msg as message.
    throw new ChatTemplateError((e as Error).message);
  }
  if (!continueFinalMessage) return rendered;

  // NOTE: as transformers does: find the final message's text in the rendering and
  // cut right after it, keeping its own trailing whitespace only if the template did.
  const final = finalMessageText(messages);
  const stripped = final.trim();
  const loc = rendered.lastIndexOf(stripped);
  if (loc < 0) {
    throw new ChatTemplateError(
      'continue_final_message is set but the final message does not appear in the chat after applying the chat template',
    );
  }
  const lstripped = final.trimStart();
  if (rendered.slice(loc, loc + lstripped.length) === final) return rendered.slice(0, loc + lstripped.length);
  return rendered.slice(0, loc + stripped.length);
}
