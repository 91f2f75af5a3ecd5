// `vllm-ts serve` flags for vLLM's optional server features (vLLM's names and
// defaults: every one is off unless given), mapped onto ApiServerOptions.
import { type Command, Option } from 'commander';
import type { ApiServerOptions } from '../openai/api_server.js';

export function addFrontendFlags(cmd: Command): Command {
  return cmd
    .option('--uds <path>', 'listen on this Unix domain socket instead of --host/--port')
    .option('--root-path <path>', 'path prefix when served behind a path-routing proxy')
    .option('--return-tokens-as-token-ids', "show logprob tokens as 'token_id:N' (for tokens that are not valid UTF-8 alone)", false)
    .option('--enable-prompt-tokens-details', 'report usage.prompt_tokens_details.cached_tokens', false)
    .option('--enable-force-include-usage', 'end every stream with usage, asked for or not', false)
    .option('--enable-auto-tool-choice', 'let the model call tools when it chooses (tool_choice "auto"; needs --tool-call-parser)', false)
    .addOption(new Option('--tool-call-parser <name>', 'how tool calls are read from the output').choices(['hermes', 'llama3_json', 'mistral']))
    .option('--enable-request-id-headers', 'add X-Request-Id to every response', false)
    .option('--enable-tokenizer-info-endpoint', 'serve GET /tokenizer_info (shows the chat template and tokenizer config)', false)
    .option('--enable-server-load-tracking', 'count the requests being answered, for GET /load', false)
    .option('--disable-fastapi-docs', 'do not serve /openapi.json and /docs', false);
}

export function frontendOptionsFromFlags(o: Record<string, unknown>): Partial<ApiServerOptions> {
  return {
    rootPath: o.rootPath as string | undefined,
    returnTokensAsTokenIds: o.returnTokensAsTokenIds as boolean,
    enablePromptTokensDetails: o.enablePromptTokensDetails as boolean,
    enableForceIncludeUsage: o.enableForceIncludeUsage as boolean,
    enableAutoToolChoice: o.enableAutoToolChoice as boolean,
    toolCallParser: (o.toolCallParser as string | undefined) ?? null,
    enableRequestIdHeaders: o.enableRequestIdHeaders as boolean,
    enableTokenizerInfoEndpoint: o.enableTokenizerInfoEndpoint as boolean,
    enableServerLoadTracking: o.enableServerLoadTracking as boolean,
    disableDocs: o.disableFastapiDocs as boolean,
  };
}
