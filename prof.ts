import { startServer } from './tests/server/helpers.js';
import { Worker } from 'node:worker_threads';
const s = await startServer({ maxBodyBytes: 32 << 20 });
const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    const body = JSON.stringify({ prompt: 'In the beginning. '.repeat(Math.ceil((10 << 20) / 18)), max_tokens: 4 });
    (async () => {
      for (let i = 0; i < 6; i++) { const t0 = Date.now(); const r = await fetch(workerData.base + '/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body }); await r.text(); console.log('req', Date.now() - t0); }
      parentPort.postMessage(1);
    })();`;
const w = new Worker(code, { eval: true, workerData: { base: s.base } });
let last = performance.now(); let worst: number[] = [];
const iv = setInterval(() => { const now = performance.now(); if (now - last > 20) worst.push(Math.round(now - last)); last = now; }, 1);
await new Promise((r) => w.once('message', r));
clearInterval(iv);
console.log('stalls', worst.join(' '));
await w.terminate();
await s.server.close();
