// @ts-check
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BatchClient, BatchError, fromStruct, status, toDate } from '../src/index.js';
import { startServer } from './server.js';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {BatchClient} */
let alice;

before(async () => {
  server = await startServer();
  alice = new BatchClient(server.target, { apiKey: 'sim-key-alice' });
});
after(async () => {
  alice?.close();
  await server?.stop();
});

/** @param {string} content */
const ask = (content) => ({ messages: [{ role: 'user', content }], max_tokens: 50 });

/**
 * @param {string} name
 * @returns {Promise<number>} how many gateway calls of this kind the simulator has seen
 */
async function gatewayCalls(name) {
  return (await server.simulator('GET', '/_simulator/stats')).requests[name] ?? 0;
}

test('create, watch to the end, then results one at a time', async () => {
  const batch = await alice.create('openai:gpt-4o-mini', {
    q1: ask('Hi'),
    q2: ask('Bye'),
    q3: { messages: [{ role: 'user', content: 'x' }], simulate: { fail: { code: 'bad', message: 'no' } } },
  }, { metadata: { team: 'search' } });
  assert.equal(batch.provider, 'openai');
  assert.equal(batch.status, 'BATCH_STATUS_VALIDATING');
  assert.equal(batch.metadata.team, 'search');
  assert.ok(toDate(batch.createdAt) instanceof Date);

  const events = [];
  for await (const event of alice.watch(batch.id)) events.push(event);
  assert.equal(events[0].kind, 'BATCH_EVENT_KIND_SNAPSHOT');
  const last = events[events.length - 1];
  assert.equal(last.batch?.status, 'BATCH_STATUS_COMPLETED');
  assert.ok(last.resumeToken);

  const got = [];
  for await (const result of alice.results(batch.id)) {
    got.push(result.outcome === 'completion'
      ? `${result.customId}=${result.completion?.choices[0].message?.content}`
      : `${result.customId}!${result.error?.code}`);
  }
  assert.deepEqual(got, ['q1=Echo: Hi', 'q2=Echo: Bye', 'q3!bad']);

  // Get, wait and list see the same batch; the service remembers its provider.
  assert.equal((await alice.get(batch.id)).status, 'BATCH_STATUS_COMPLETED');
  const waited = await alice.wait(batch.id, { timeoutMs: 5000 });
  assert.equal(waited.done, true);
  assert.equal(waited.batch.requestCounts?.total, 3);
  const ids = [];
  for await (const listed of alice.list({ provider: 'openai', pageSize: 1 })) ids.push(listed.id);
  assert.ok(ids.includes(batch.id), `${batch.id} not in ${ids}`);
});

test('results arrive in chunks, are waited for, and start at an index', async () => {
  const n = 400; // about 2 KiB each: several chunks of at most 256 KiB
  /** @type {Record<string, ReturnType<typeof ask>>} */
  const requests = {};
  for (let i = 0; i < n; i++) requests[`r${i}`] = ask(`question ${i} ${'x'.repeat(2000)}`);
  const batch = await alice.create('openai:gpt-4o-mini', requests);

  const progress = [];
  let i = 0;
  for await (const result of alice.results(batch.id, { wait: true, onProgress: (b) => progress.push(b.status) })) {
    assert.equal(result.customId, `r${i}`);
    assert.match(result.completion?.choices[0].message?.content ?? '', new RegExp(`^Echo: question ${i} x`));
    i++;
  }
  assert.equal(i, n);
  assert.ok(progress.length > 0, 'no progress message while waiting');

  const tail = [];
  for await (const result of alice.results(batch.id, { startIndex: n - 3 })) tail.push(result.customId);
  assert.deepEqual(tail, [`r${n - 3}`, `r${n - 2}`, `r${n - 1}`]);

  // Stopping early ends the stream; the extra fields come back as plain objects.
  for await (const result of alice.results(batch.id)) {
    assert.equal(typeof fromStruct(result.completion?.extra), 'object');
    break;
  }
});

test('UNAVAILABLE with RetryInfo: the results stream is reopened after the delay', async () => {
  const batch = await alice.create('openai:gpt-4o-mini', { a: ask('x') });
  assert.equal((await alice.wait(batch.id, { timeoutMs: 20_000 })).done, true);
  const before = await gatewayCalls('results');
  await server.simulator('POST', '/_simulator/faults', { op: 'results', status: 503, retry_after: '1', times: 1 });
  const started = Date.now();
  const ids = [];
  for await (const result of alice.results(batch.id)) ids.push(result.customId);
  assert.deepEqual(ids, ['a']);
  assert.ok(Date.now() - started >= 900, 'retried before the RetryInfo delay');
  assert.equal(await gatewayCalls('results') - before, 2);
});

test('create is idempotent under one request_id', async () => {
  const requestId = '3f2c9a8e-1b7d-4e5f-9a0b-6c1d2e3f4a5b';
  const before = await gatewayCalls('create');
  const first = await alice.create('openai:gpt-4o-mini', { a: ask('x') }, { requestId });
  const again = await alice.create('openai:gpt-4o-mini', { a: ask('x') }, { requestId });
  assert.equal(again.id, first.id);
  assert.equal(await gatewayCalls('create') - before, 1);
  await assert.rejects(alice.create('openai:gpt-4o-mini', [{ customId: 'b', body: ask('y') }], { requestId }),
    (/** @type {BatchError} */ error) => error.code === status.ALREADY_EXISTS && error.reason === 'REQUEST_ID_REUSED');
});

test('more than 10,000 requests through CreateBatch make one batch of parts', async () => {
  const requests = Object.fromEntries(Array.from({ length: 10_001 }, (_, i) => [`r${i}`, ask(`q${i}`)]));
  const batch = await alice.create('openai:gpt-4o-mini', requests, { maxAttempts: 2 });
  assert.ok(batch.id.startsWith('obatch_'), batch.id);
  assert.deepEqual(batch.parts.map((part) => Number(part.requestCount)), [10_000, 1]);
  assert.equal(Number(batch.requestCounts?.total), 10_001);
});

test('watchMany follows the listed batches on one stream until broken off', async () => {
  const first = await alice.create('openai:gpt-4o-mini', { q1: ask('one') });
  const second = await alice.create('openai:gpt-4o-mini', { q1: ask('two') });
  const seen = new Set();
  for await (const event of alice.watchMany([first.id, second.id])) {
    if (event.kind === 'BATCH_EVENT_KIND_SNAPSHOT') seen.add(event.batch?.id);
    if (seen.size === 2) break; // it never ends by itself
  }
  assert.deepEqual([...seen].sort(), [first.id, second.id].sort());
});

test('cancel', async () => {
  const batch = await alice.create('openai:gpt-4o-mini', { a: ask('x') });
  const cancelled = await alice.cancel(batch.id);
  assert.ok(['BATCH_STATUS_CANCELLING', 'BATCH_STATUS_CANCELLED'].includes(cancelled.status), cancelled.status);
  const { batch: final, done } = await alice.wait(batch.id, { timeoutMs: 20_000 });
  assert.equal(done, true);
  assert.equal(final.status, 'BATCH_STATUS_CANCELLED');
  await assert.rejects(async () => { for await (const _ of alice.results(batch.id)); },
    (/** @type {BatchError} */ error) => error.codeName === 'FAILED_PRECONDITION' && error.reason === 'BATCH_HAS_NO_RESULTS');
});

test('bodies go as JSON text: a string as written, NaN refused before any call', async () => {
  const batch = await alice.create('openai:gpt-4o-mini', {
    asText: '{"messages": [{"role": "user", "content": "Hi"}], "seed": 1152921504606846977}',
    asObject: { messages: [{ role: 'user', content: 'Hi' }] },
  });
  assert.match(batch.id, /^batch_/);
  await assert.rejects(
    alice.create('openai:gpt-4o-mini', { q1: { messages: [], temperature: NaN } }),
    /"q1": NaN is not a JSON number/,
  );
});
