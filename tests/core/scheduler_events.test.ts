// The core's request events (vLLM's EngineCoreEvent), which the front end turns
// into the queue / prefill / decode / inference time metrics: QUEUED on arrival,
// SCHEDULED each time a request leaves the waiting queue, PREEMPTED when it is sent
// back; each reaches the front end with the request's next output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Request } from '../../src/core/request.js';
import { SamplingParams } from '../../src/sampling_params.js';
import { blockHasher, FakeRunner, makeScheduler, runToCompletion, seqPrompt } from './fake_runner.js';

test('events: queued then scheduled with the first output; each preemption adds preempted then scheduled', () => {
  const sched = makeScheduler({ numBlocks: 13 }); // 12 usable blocks of 4: the five requests preempt each other
  const runner = new FakeRunner(4, 13);
  const requests = Array.from({ length: 5 }, (_, i) =>
    new Request({ requestId: `r${i}`, promptTokenIds: seqPrompt(8 + i, 100 * (i + 1)), samplingParams: new SamplingParams({ ignoreEos: true, maxTokens: 16 }), blockHasher }));
  for (const r of requests) sched.addRequest(r);
  const res = runToCompletion(sched, runner);
  let preempted = 0;
  for (const r of requests) {
    const outputs = res.get(r.requestId)!.outputs;
    const events = outputs.flatMap((o) => o.events ?? []);
    assert.deepEqual(outputs[0].events?.slice(0, 2).map((e) => e.type), ['queued', 'scheduled'], `${r.requestId}: with its first output`);
    const types = events.map((e) => e.type);
    assert.equal(types.filter((t) => t === 'queued').length, 1);
    assert.equal(types.filter((t) => t === 'preempted').length, r.numPreemptions);
    assert.equal(types.filter((t) => t === 'scheduled').length, 1 + r.numPreemptions, 'scheduled again after each preemption');
    types.forEach((t, i) => {
      if (t === 'preempted') assert.equal(types[i + 1], 'scheduled', 'a preempted request is scheduled again before it outputs');
    });
    for (let i = 1; i < events.length; i++) assert.ok(events[i].timestamp >= events[i - 1].timestamp, 'in time order');
    preempted += r.numPreemptions;
  }
  assert.ok(preempted > 0, 'the workload must preempt');
});
