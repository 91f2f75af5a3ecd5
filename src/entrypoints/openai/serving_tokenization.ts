// POST /tokenize and POST /detokenize (vLLM's OpenAIServingTokenization).
import { InvalidRequestError } from '../../errors.js';
import type { DetokenizeRequest, TokenizeChatRequest, TokenizeCompletionRequest } from './protocol.js';
import type { OpenAIServingChat } from './serving_chat.js';

export class OpenAIServingTokenization {
  constructor(private readonly chat: OpenAIServingChat) {}

  async tokenize(req: TokenizeCompletionRequest | TokenizeChatRequest) {
    this.chat.checkModel(req.model);
    const tokenizer = this.chat.tokenizer;
    const tokens =
      'messages' in req
        ? (await this.chat.renderChat(req, { forTokenize: true })).promptTokenIds
        : await this.chat.opts.guard.encode(req.prompt, { addSpecialTokens: req.add_special_tokens ?? true });
    return {
      count: tokens.length,
      max_model_len: this.chat.maxModelLen,
      tokens,
      token_strs: req.return_token_strs ? tokens.map((id) => tokenizer.idToToken(id) ?? '') : null,
    };
  }

  detokenize(req: DetokenizeRequest) {
    this.chat.checkModel(req.model);
    const tokenizer = this.chat.tokenizer;
    const vocab = Math.max(tokenizer.vocabSize, this.chat.engine.modelConfig.vocabSize);
    const bad = req.tokens.find((id) => id < 0 || id >= vocab);
    if (bad !== undefined) {
      throw new InvalidRequestError(`Token id ${bad} is out of vocabulary (the vocabulary has ${vocab} ids)`, 'tokens');
    }
    return { prompt: tokenizer.decode(req.tokens) };
  }
}
