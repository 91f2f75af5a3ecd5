// GET /health every `intervalMs` from a worker thread of its own. NOTE: the
// probe's event loop is not the one that drives 64 clients, so its latencies are
// the server's, not the load generator's backlog.
import { Worker } from 'node:worker_threads';

const PROBE = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { base, intervalMs, timeoutMs } = workerData;
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const latencies = [];
const failures = [];
let stopped = false;
function next(t0) {
  if (!stopped) setTimeout(probe, Math.max(0, intervalMs - (performance.now() - t0)));
}
function probe() {
  const t0 = performance.now();
  let done = false;
  const end = (failure) => {
    if (done) return;
    done = true;
    latencies.push(performance.now() - t0);
    if (failure) failures.push(failure);
    next(t0);
  };
  const req = http.get(base + '/health', { agent, timeout: timeoutMs }, (res) => {
    res.resume();
    res.on('end', () => end(res.statusCode === 200 ? null : 'status ' + res.statusCode));
  });
  req.on('timeout', () => req.destroy(new Error('no answer within ' + timeoutMs + ' ms')));
  req.on('error', (e) => end(e.message));
}
parentPort.on('message', () => {
  stopped = true;
  parentPort.postMessage({ latencies, failures });
  agent.destroy();
  parentPort.close();
});
probe();
`;

export interface HealthResult {
  /** Milliseconds per probe, in order. */
  latencies: number[];
  /** Non-200 answers and errors. */
  failures: string[];
}

export class HealthProbe {
  private readonly worker: Worker;

  constructor(base: string, intervalMs = 100, timeoutMs = 2000) {
    this.worker = new Worker(PROBE, { eval: true, workerData: { base, intervalMs, timeoutMs } });
  }

  stop(): Promise<HealthResult> {
    return new Promise((resolve, reject) => {
      this.worker.once('message', (r: HealthResult) => resolve(r));
      this.worker.once('error', reject);
      this.worker.postMessage('stop');
    });
  }
}
