// POST /v1/embeddings (vLLM's OpenAIServingEmbedding for decoder-only models): the
// final normed hidden state of each input's last token, L2-normalized by default,
// as floats or base64 of little-endian float32.
import type { ServerResponse } from 'node:http';
import { InvalidRequestError } from '../../errors.js';
import type { RequestOutput } from '../../outputs.js';
import { makePoolingParams } from '../../pooling_params.js';
import { SamplingParams } from '../../sampling_params.js';
import { sendJson } from './http.js';
import type { EmbeddingRequest } from './protocol.js';
import { mergeAsyncIterators, OpenAIServing, randomId, type TokenizedPrompt } from './serving_engine.js';

export class OpenAIServingEmbedding extends OpenAIServing {
  /** @param headerRequestId the client\'s X-Request-Id, which vLLM bases the request id on before the body\'s request_id */
  async create(req: EmbeddingRequest, res: ServerResponse, signal: AbortSignal, headerRequestId?: string): Promise<void> {
    this.checkModel(req.model);
    if (req.dimensions !== null && req.dimensions !== undefined) {
      throw new InvalidRequestError('dimensions is not supported: the model has a fixed embedding size', 'dimensions');
    }
    const prompts = await this.inputs(req);
    const poolingParams = makePoolingParams({ pooling: 'last', normalize: req.normalize ?? true });
    const params = SamplingParams.create({ temperature: 0, maxTokens: 1 });
    const requestId = `embd-${headerRequestId ?? randomId()}`;
    const gens: AsyncGenerator<RequestOutput, void>[] = [];
    try {
      for (const [i, p] of prompts.entries()) {
        this.logRequest(`${requestId}-${i}`, p, params);
        gens.push(this.engine.generate({ promptTokenIds: p.promptTokenIds }, params, `${requestId}-${i}`, { signal, poolingParams, priority: req.priority ?? 0 }));
      }
    } catch (e) {
      await Promise.all(gens.map((g) => g.return()));
      throw e;
    }
    const finals: (RequestOutput | null)[] = gens.map(() => null);
    for await (const [i, out] of mergeAsyncIterators(gens)) finals[i] = out;
    const base64 = req.encoding_format === 'base64';
    let promptTokens = 0;
    const data = finals.map((f, index) => {
      if (!f?.embedding) throw new Error(`embedding request ${requestId}-${index} ended without a vector`);
      promptTokens += f.promptTokenIds.length;
      const embedding = base64 ? Buffer.from(Float32Array.from(f.embedding).buffer).toString('base64') : f.embedding;
      return { object: 'embedding', index, embedding };
    });
    sendJson(res, 200, {
      id: requestId,
      object: 'list',
      created: Math.floor(Date.now() / 1000),
      model: this.modelName,
      data,
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    });
  }

  private inputs(req: EmbeddingRequest): Promise<TokenizedPrompt[]> {
    const empty = () => new InvalidRequestError('input must be a non-empty string, list of strings, or token ids', 'input');
    if (Array.isArray(req.input) && req.input.length === 0) throw empty();
    return this.tokenizeInputs(req.input, req.add_special_tokens ?? true, { tokens: req.truncate_prompt_tokens, side: req.truncation_side }, empty, 'input');
  }
}
