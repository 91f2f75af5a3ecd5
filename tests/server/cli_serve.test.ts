// `vllm-ts serve` fails fast at start: port and host checked and bound before the
// model loads, flag mistakes named in one sentence; the startup lines say which
// device was picked and why, and the curl line never uses an unset variable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { AsyncLLM } from '../../src/engine/async_llm.js';
import { ApiServer } from '../../src/entrypoints/openai/api_server.js';
import { bindServer } from '../../src/entrypoints/cli/bind.js';
import { startServe } from '../soak/server_process.js';
import { MODEL, SMALL_ARGS } from './helpers.js';

/** Runs `vllm-ts serve MODEL ...args` to its exit; its status and log. */
function serve(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; log: string; ms: number }> {
  const t0 = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/entrypoints/cli/main.ts', 'serve', MODEL, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (log += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (log += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, log, ms: Date.now() - t0 });
    });
  });
}

const LOADED = /LlamaForCausalLM on/; // the engine's model-loaded line

test('flag mistakes and a busy or invalid port fail in one clear line, before the model loads', async () => {
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  const port = (busy.address() as { port: number }).port;
  try {
    const cases: [string[], RegExp][] = [
      [['--host', '127.0.0.1', '--port', String(port)], new RegExp(`Port ${port} is already in use`)],
      [['--port', '70000'], /--port "70000" is not a port number: use an integer from 0 to 65535/],
      [['--port', 'http'], /--port "http" is not a port number/],
      [['--host', 'http://localhost', '--port', '0'], /--host "http:\/\/localhost" is not an IP address or host name/],
      [['--host', '192.0.2.77', '--port', '0'], /Cannot bind to --host 192\.0\.2\.77: it is not an address of this machine/],
      [['--max-num-seqs', '0', '--port', '0'], /--max-num-seqs \(maxNumSeqs\) must be a positive integer, got 0/],
      [['--max-num-batched-tokens', '0', '--port', '0'], /--max-num-batched-tokens \(maxNumBatchedTokens\) must be a positive integer, got 0/],
      [['--gpu-memory-utilization', '1.5', '--port', '0'], /--gpu-memory-utilization \(gpuMemoryUtilization\) must be a fraction in \(0, 1\], got 1\.5/],
      [['--kv-cache-memory-bytes', '-5', '--port', '0'], /--kv-cache-memory-bytes \(kvCacheMemoryBytes\) must be a positive integer, got -5/],
      [['--block-size', '0', '--port', '0'], /--block-size \(blockSize\) must be a positive integer, got 0/],
      [['--shutdown-timeout', '-1', '--port', '0'], /--shutdown-timeout must be 0 or more, got -1/],
    ];
    const results = await Promise.all(cases.map(([args]) => serve(args)));
    for (const [i, [args, want]] of cases.entries()) {
      const { code, log } = results[i];
      assert.equal(code, 1, `${args.join(' ')}: exit ${code}\n${log}`);
      assert.match(log, want, args.join(' '));
      assert.doesNotMatch(log, LOADED, `${args.join(' ')}: failed only after loading the model`);
      assert.doesNotMatch(log, /\n\s+at /, `${args.join(' ')}: a stack trace instead of a sentence`);
    }
  } finally {
    busy.close();
  }
});

test('startup: the device line says which and why; with --api-key the curl line has a placeholder, not an unset variable', async () => {
  const env = { ...process.env };
  delete env.VLLM_API_KEY;
  const s = await startServe(MODEL, ['--api-key', 'sekrit', '--max-model-len', '256', '--num-threads', '1', '--kv-cache-memory-bytes', String(4 << 20)], { env: env as Record<string, string> });
  try {
    const log = s.stderr();
    const device = log.split('\n').filter((l) => l.includes('Using device'));
    assert.equal(device.length, 1, log);
    assert.match(device[0], /Using device (cpu|cuda): --device auto: /);
    const curl = log.slice(log.indexOf('Application startup complete'));
    assert.match(curl, /curl http:\/\/127\.0\.0\.1:\d+\/v1\/completions/);
    assert.match(curl, /Authorization: Bearer YOUR_API_KEY/);
    assert.ok(!curl.includes('$VLLM_API_KEY') && !log.includes('sekrit'), 'no unset variable, no key in the log');
    assert.ok(log.indexOf('listening on') < log.indexOf('Using device'), 'the port is bound before the model loads');
    const res = await fetch(`${s.base}/v1/models`, { headers: { authorization: 'Bearer sekrit' } });
    assert.equal(res.status, 200);
  } finally {
    await s.stop();
  }
});

test('a bound server answers 503 "loading" until the API server takes it over', async () => {
  const { server, address } = await bindServer({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${address.port}`;
  const loading = await fetch(`${base}/health`);
  assert.equal(loading.status, 503);
  assert.equal(loading.headers.get('retry-after'), '5');
  assert.match(((await loading.json()) as { error: { message: string } }).error.message, /model is still loading/);
  const engine = await AsyncLLM.create(SMALL_ARGS);
  const api = new ApiServer(engine, { httpServer: server, logger: { debug() {}, info() {}, warn() {}, error() {} } });
  try {
    assert.equal((await fetch(`${base}/health`)).status, 200);
  } finally {
    await api.close();
  }
});
