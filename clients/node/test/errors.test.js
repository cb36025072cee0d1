// @ts-check
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BatchClient, BatchError, status } from '../src/index.js';
import { startServer } from './server.js';
import { camelPath } from '../src/errors.js';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {BatchClient[]} */
const clients = [];

/** @param {string} apiKey */
function client(apiKey) {
  const made = new BatchClient(server.target, { apiKey, maxAttempts: 1 });
  clients.push(made);
  return made;
}

before(async () => { server = await startServer(); });
after(async () => {
  for (const made of clients) made.close();
  await server?.stop();
});

const body = { messages: [{ role: 'user', content: 'x' }] };

/**
 * The BatchError a promise rejects with.
 * @param {Promise<unknown>} promise
 * @returns {Promise<BatchError>}
 */
async function failure(promise) {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof BatchError, `not a BatchError: ${error}`);
    return error;
  }
  throw new assert.AssertionError({ message: 'the call succeeded' });
}

test('INVALID_ARGUMENT carries ErrorInfo and BadRequest field violations', async () => {
  const error = await failure(client('sim-key-alice').create('', [{ customId: 'a', body }, { customId: 'a', body }]));
  assert.equal(error.code, status.INVALID_ARGUMENT);
  assert.equal(error.codeName, 'INVALID_ARGUMENT');
  assert.equal(error.reason, 'INVALID_REQUEST');
  assert.equal(error.domain, 'batch.otari.mozilla.ai');
  const fields = error.fieldViolations.map((v) => v.field);
  assert.ok(fields.includes('model'), String(fields));
  assert.ok(fields.includes('requests[1].customId'), String(fields)); // as the caller named it
  assert.ok(error.fieldViolations.some((v) => v.protoField === 'requests[1].custom_id'));
  assert.ok(error.fieldViolations.every((v) => v.description.length > 0));
  assert.equal(error.retryDelayMs, null);
  assert.equal(error.retryable, false);
});

test('FAILED_PRECONDITION names the batch and its status in ErrorInfo.metadata', async () => {
  const alice = client('sim-key-alice');
  const batch = await alice.create('openai:gpt-4o-mini', { a: body });
  const error = await failure((async () => { for await (const _ of alice.results(batch.id)); })());
  assert.equal(error.code, status.FAILED_PRECONDITION);
  assert.equal(error.reason, 'BATCH_NOT_COMPLETED');
  assert.equal(error.metadata.batch_id, batch.id);
  assert.ok(error.metadata.status, JSON.stringify(error.metadata));

  // Another user's batch is NOT_FOUND; a key the gateway does not know is UNAUTHENTICATED.
  const bob = await failure(client('sim-key-bob').get(batch.id, { provider: 'openai' }));
  assert.equal(bob.code, status.NOT_FOUND);
  assert.equal(bob.reason, 'BATCH_NOT_FOUND');
  const stranger = await failure(client('not-a-key').get(batch.id, { provider: 'openai' }));
  assert.equal(stranger.code, status.UNAUTHENTICATED);
  assert.equal(stranger.reason, 'GATEWAY_UNAUTHENTICATED');
});

test('RESOURCE_EXHAUSTED carries RetryInfo from the gateway\'s Retry-After', async () => {
  await server.simulator('POST', '/_simulator/faults', { op: 'create', status: 429, retry_after: '7', times: 1 });
  const error = await failure(client('sim-key-alice').create('openai:gpt-4o-mini', { a: body }));
  assert.equal(error.code, status.RESOURCE_EXHAUSTED);
  assert.equal(error.reason, 'GATEWAY_RATE_LIMITED');
  assert.equal(error.retryDelayMs, 7000);
  assert.equal(error.retryable, true);
  assert.ok(error.cause, 'the grpc-js error is kept as the cause');
});

test('field paths in the case JavaScript callers write them; indexes and map keys as sent', () => {
  assert.equal(camelPath('requests[3].custom_id'), 'requests[3].customId');
  assert.equal(camelPath('requests[0].body_json'), 'requests[0].bodyJson');
  assert.equal(camelPath('metadata[my_key].x'), 'metadata[my_key].x');
  assert.equal(camelPath('completion_window'), 'completionWindow');
  assert.equal(camelPath('model'), 'model');
});
