// Refuse before work: a text prompt that cannot fit the model's context is refused
// from its length alone, before any tokenization (a text of L characters has at
// least L / maxCharsPerToken tokens); one that could fit is tokenized exactly, off
// the HTTP event loop when it is long (TokenizerPool), and refused when its tokens
// exceed max_model_len.
import { InvalidRequestError } from '../../errors.js';
import { minTokensFor } from '../../tokenizer/length_bound.js';
import type { Tokenizer } from '../../tokenizer/tokenizer.js';
import type { TokenizerPool } from '../../tokenizer/tokenizer_pool.js';

export interface GuardOptions {
  addSpecialTokens: boolean;
  /** truncate_prompt_tokens: the prompt is cut to its last tokens, so its length alone refuses nothing. */
  truncate?: number | null;
  /** The request field named in a refusal. */
  param?: string;
}

export class PromptGuard {
  constructor(
    readonly tokenizer: Tokenizer,
    readonly pool: TokenizerPool,
    readonly maxModelLen: number,
  ) {}

  /** The most characters a prompt of max_model_len tokens can have (Infinity: no bound for this tokenizer). */
  get maxPromptChars(): number {
    return this.maxModelLen * this.tokenizer.maxCharsPerToken;
  }

  /** Throws the refusal for a text that certainly has more tokens than the model's context. */
  checkLength(text: string, param = 'prompt'): void {
    if (text.length > this.maxPromptChars) throw this.tooLong(text.length, param);
  }

  /** The refusal of a text of `chars` code units (more than maxPromptChars). */
  tooLong(chars: number, param: string): InvalidRequestError {
    const atLeast = minTokensFor(chars, this.tokenizer.maxCharsPerToken);
    return new InvalidRequestError(
      `This model's maximum context length is ${this.maxModelLen} tokens. However, your request has at least ${atLeast} ` +
        `input tokens (${chars} characters in '${param.length > 100 ? `${param.slice(0, 100)}...` : param}'). Please reduce the length of the input.`,
      param,
    );
  }

  /** Token ids of a text prompt that fits the context; refuses, without tokenizing it all, one that cannot. */
  async encode(text: string, opts: GuardOptions): Promise<number[]> {
    const param = opts.param ?? 'prompt';
    const truncating = opts.truncate !== null && opts.truncate !== undefined;
    if (!truncating) this.checkLength(text, param);
    const ids = await this.pool.encode(text, opts.addSpecialTokens);
    if (!truncating && ids.length > this.maxModelLen) {
      throw new InvalidRequestError(
        `This model's maximum context length is ${this.maxModelLen} tokens. However, your request has ${ids.length} ` +
          'input tokens. Please reduce the length of the input.',
        param,
      );
    }
    return ids;
  }
}
