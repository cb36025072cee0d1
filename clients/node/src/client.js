// @ts-check
// BatchClient: otari-batch-grpc's BatchService over @grpc/grpc-js, with the contract loaded at run time by
// @grpc/proto-loader from the contract this package carries (contract/protos: no generated code to run; the TypeScript
// types in contract/types, from generated/node, are for checking).
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { BatchError, toBatchError } from './errors.js';

/** @typedef {import('../contract/types/batch_service.js').ProtoGrpcType} ProtoGrpcType */
/** @typedef {import('../contract/types/otari/batch/v1/BatchService.js').BatchServiceClient} BatchServiceClient */
/** @typedef {import('../contract/types/otari/batch/v1/Batch.js').Batch__Output} Batch */
/** @typedef {import('../contract/types/otari/batch/v1/BatchResult.js').BatchResult__Output} BatchResult */
/** @typedef {import('../contract/types/otari/batch/v1/BatchEvent.js').BatchEvent__Output} BatchEvent */
/** @typedef {import('../contract/types/otari/batch/v1/BatchStatus.js').BatchStatus__Output} BatchStatus */
/** @typedef {import('./struct.js').JSONValue} JSONValue */
/** @typedef {{customId: string, body: Record<string, JSONValue> | string}} BatchRequest */
/** @typedef {{batches: Batch[], nextPageToken: string, incompleteProviders: string[]}} BatchPage */

/**
 * @typedef {object} ClientOptions
 * @property {string} apiKey the otari API key, sent on every call as `authorization: Bearer <key>`
 * @property {grpc.ChannelCredentials} [credentials] default: plaintext (loopback, meshes); grpc.credentials.createSsl() for TLS
 * @property {string} [protoDir] the directory holding otari/batch/v1/*.proto; default: the package's own contract/protos
 * @property {number} [maxAttempts] attempts of a retried call or stream (default 5)
 * @property {number} [defaultRetryMs] first pause when an UNAVAILABLE error carries no RetryInfo; doubles (default 1000)
 * @property {grpc.ChannelOptions} [channelOptions] passed to grpc-js
 */

/**
 * @typedef {object} CallOptions
 * @property {string} [provider] the provider holding the batch; needed only for a batch this service has not shown you
 * @property {number} [deadlineMs] the call's deadline, from now
 */

/** The options proto-loader decodes with; scripts/protoc-gen-loader-types.js generates the types with the same ones. */
export const LOADER_OPTIONS = Object.freeze({
  keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true,
});
const DEFAULT_PROTO_DIR = fileURLToPath(new URL('../contract/protos', import.meta.url));

export class BatchClient {
  /**
   * @param {string} target host:port of the service, e.g. "127.0.0.1:50051"
   * @param {ClientOptions} options
   */
  constructor(target, options) {
    const definition = protoLoader.loadSync('otari/batch/v1/batch_service.proto', {
      ...LOADER_OPTIONS, includeDirs: [options.protoDir ?? DEFAULT_PROTO_DIR],
    });
    const proto = /** @type {ProtoGrpcType} */ (/** @type {unknown} */ (grpc.loadPackageDefinition(definition)));
    /** The generated-at-run-time stub, for calls this class does not wrap; pass `metadata()`. */
    this.stub = new proto.otari.batch.v1.BatchService(
      target, options.credentials ?? grpc.credentials.createInsecure(), options.channelOptions);
    this.maxAttempts = options.maxAttempts ?? 5;
    this.defaultRetryMs = options.defaultRetryMs ?? 1000;
    this._apiKey = options.apiKey;
  }

  /** Call metadata carrying the key. */
  metadata() {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${this._apiKey}`);
    return metadata;
  }

  close() {
    this.stub.close();
  }

  /**
   * Creates a batch. `requests` maps custom_id to a chat-completion body (or is a list of {customId, body}).
   * A fresh request_id (or `requestId`) is sent and UNAVAILABLE is retried with it: a lost reply never makes a
   * second batch.
   * @param {string} model "provider:model", e.g. "openai:gpt-4o-mini"
   * @param {Record<string, Record<string, JSONValue> | string> | BatchRequest[]} requests
   * Any number of requests that one message holds (the server's limit, 64 MiB by default: about 50,000 of 1 KiB):
   * past the gateway's 10,000 the service splits them into parts upstream and answers one batch of its own id
   * (`batch.parts`). `maxAttempts` (2 to 5) runs the requests whose failure is retryable again, while no one calls.
   * @param {{requestId?: string, metadata?: Record<string, string>, completionWindow?: string, user?: string, maxAttempts?: number, deadlineMs?: number}} [options]
   * @returns {Promise<Batch>}
   */
  async create(model, requests, options = {}) {
    const items = Array.isArray(requests) ? requests : Object.entries(requests).map(([customId, body]) => ({ customId, body }));
    const request = {
      model,
      // As JSON text (body_json): no Struct conversion on either side. A string is taken as JSON text already.
      requests: items.map(({ customId, body }) => ({ customId, bodyJson: jsonText(customId, body) })),
      metadata: options.metadata ?? {},
      completionWindow: options.completionWindow ?? '',
      user: options.user ?? '',
      requestId: options.requestId ?? randomUUID(),
      maxAttempts: options.maxAttempts ?? 0,
    };
    for (let attempt = 1; ; attempt++) {
      try {
        const reply = await unary((done) => this.stub.CreateBatch(
          request, this.metadata(), callOptions(options.deadlineMs ?? 60_000), done));
        return /** @type {Batch} */ (reply.batch);
      } catch (error) {
        await this._pauseOrThrow(error, attempt);
      }
    }
  }

  /**
   * The batch's current state.
   * @param {string} batchId
   * @param {CallOptions} [options]
   * @returns {Promise<Batch>}
   */
  async get(batchId, options = {}) {
    const reply = await unary((done) => this.stub.GetBatch(
      { batchId, provider: options.provider ?? '' }, this.metadata(), callOptions(options.deadlineMs), done));
    return /** @type {Batch} */ (reply.batch);
  }

  /**
   * Asks for the batch to be cancelled; returns it, usually CANCELLING.
   * @param {string} batchId
   * @param {CallOptions} [options]
   * @returns {Promise<Batch>}
   */
  async cancel(batchId, options = {}) {
    const reply = await unary((done) => this.stub.CancelBatch(
      { batchId, provider: options.provider ?? '' }, this.metadata(), callOptions(options.deadlineMs), done));
    return /** @type {Batch} */ (reply.batch);
  }

  /**
   * One page of your batches, newest first. No provider: every provider you have batches with here.
   * @param {{provider?: string, pageSize?: number, pageToken?: string, deadlineMs?: number}} [options]
   * @returns {Promise<BatchPage>}
   */
  async listPage(options = {}) {
    const reply = await unary((done) => this.stub.ListBatches(
      { provider: options.provider ?? '', pageSize: options.pageSize ?? 0, pageToken: options.pageToken ?? '' },
      this.metadata(), callOptions(options.deadlineMs), done));
    return {
      batches: reply.batches, nextPageToken: reply.nextPageToken, incompleteProviders: reply.incompleteProviders,
    };
  }

  /**
   * Every batch of yours, newest first, page after page.
   * @param {{provider?: string, pageSize?: number}} [options]
   * @returns {AsyncGenerator<Batch, void, undefined>}
   */
  async *list(options = {}) {
    let pageToken = '';
    do {
      const page = await this.listPage({ ...options, pageToken });
      yield* page.batches;
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  /**
   * Long-polls until the batch is terminal (done) or `timeoutMs` passes (not done); its latest state either way.
   * @param {string} batchId
   * @param {{timeoutMs?: number, provider?: string}} [options]
   * @returns {Promise<{batch: Batch, done: boolean}>}
   */
  async wait(batchId, options = {}) {
    const timeoutMs = options.timeoutMs ?? 60_000;
    const timeout = { seconds: Math.floor(timeoutMs / 1000), nanos: (timeoutMs % 1000) * 1e6 };
    const reply = await unary((done) => this.stub.WaitBatch(
      { batchId, provider: options.provider ?? '', timeout }, this.metadata(), callOptions(timeoutMs + 10_000), done));
    return { batch: /** @type {Batch} */ (reply.batch), done: reply.done };
  }

  /**
   * The batch's results, one at a time, in order (the server sends them in chunks). A broken stream is reopened
   * at the next index. With `wait`, a batch not yet completed is waited for (`onProgress` sees its state
   * meanwhile) instead of failing with FAILED_PRECONDITION (BATCH_NOT_COMPLETED).
   * @param {string} batchId
   * @param {{provider?: string, wait?: boolean, startIndex?: number, onProgress?: (batch: Batch) => void, deadlineMs?: number}} [options]
   * @returns {AsyncGenerator<BatchResult, void, undefined>}
   */
  async *results(batchId, options = {}) {
    let next = options.startIndex ?? 0;
    let attempt = 0;
    for (;;) {
      const call = this.stub.StreamResults(
        { batchId, provider: options.provider ?? '', startIndex: next, wait: options.wait ?? false },
        this.metadata(), callOptions(options.deadlineMs));
      try {
        for await (const message of /** @type {AsyncIterable<import('../contract/types/otari/batch/v1/StreamResultsResponse.js').StreamResultsResponse__Output>} */ (call)) {
          attempt = 0;
          if (message.progress && message.results.length === 0) {
            options.onProgress?.(message.progress);
            continue;
          }
          const skip = next - message.firstIndex; // a resumed stream starts at `next`; never yield one twice
          if (skip < 0 || skip > message.results.length) {
            throw new Error(`results chunk at ${message.firstIndex}, expected ${next}`);
          }
          for (const result of message.results.slice(skip)) {
            next += 1;
            yield result;
          }
        }
        return;
      } catch (error) {
        attempt += 1;
        await this._pauseOrThrow(error, attempt);
      } finally {
        end(call);
      }
    }
  }

  /**
   * Events of one batch: a snapshot, each change, heartbeats, until it is terminal. A broken stream is resumed
   * after the last event's resume_token; pass `resumeToken` to continue an earlier watch.
   * @param {string} batchId
   * @param {{provider?: string, resumeToken?: string}} [options]
   * @returns {AsyncGenerator<BatchEvent, void, undefined>}
   */
  async *watch(batchId, options = {}) {
    const provider = options.provider ?? '';
    yield* this._events(
      (resumeToken) => this.stub.WatchBatch({ batchId, provider, resumeToken }, this.metadata()),
      options.resumeToken ?? '');
  }

  /**
   * Events of many batches on one stream (`event.batch.id` says which): the listed ones (each shown to you through
   * this service), or, with none listed, every live batch of yours and each one you create or are shown while
   * watching. Never ends on its own (`break` ends it); resumed after a broken stream like `watch`. A batch's
   * trouble comes as an UNAVAILABLE or REMOVED event with `problem` set, not as an error.
   * @param {string[]} [batchIds]
   * @param {{resumeToken?: string}} [options]
   * @returns {AsyncGenerator<BatchEvent, void, undefined>}
   */
  async *watchMany(batchIds = [], options = {}) {
    yield* this._events(
      (resumeToken) => this.stub.WatchBatches({ batchIds, resumeToken }, this.metadata()),
      options.resumeToken ?? '');
  }

  /**
   * A watch stream, reopened after the last resume_token seen whenever it breaks with a retryable error.
   * @param {(resumeToken: string) => grpc.ClientReadableStream<unknown>} open
   * @param {string} resumeToken
   * @returns {AsyncGenerator<BatchEvent, void, undefined>}
   */
  async *_events(open, resumeToken) {
    let attempt = 0;
    for (;;) {
      const call = open(resumeToken);
      try {
        for await (const message of /** @type {AsyncIterable<{event: BatchEvent}>} */ (call)) {
          attempt = 0;
          resumeToken = message.event.resumeToken;
          yield message.event;
        }
        return;
      } catch (error) {
        attempt += 1;
        await this._pauseOrThrow(error, attempt);
      } finally {
        end(call);
      }
    }
  }

  /**
   * Sleeps before a retry of UNAVAILABLE (as RetryInfo says, or doubling from defaultRetryMs); throws otherwise.
   * @param {unknown} error
   * @param {number} attempt
   */
  async _pauseOrThrow(error, attempt) {
    const failure = toBatchError(error);
    if (!(failure instanceof BatchError) || failure.code !== grpc.status.UNAVAILABLE || attempt >= this.maxAttempts) {
      throw failure;
    }
    await sleep(failure.retryDelayMs ?? this.defaultRetryMs * 2 ** (attempt - 1));
  }
}

/**
 * @param {number | undefined} deadlineMs
 * @returns {grpc.CallOptions}
 */
function callOptions(deadlineMs) {
  return deadlineMs === undefined ? {} : { deadline: new Date(Date.now() + deadlineMs) };
}

/**
 * A unary call as a promise; its error as a BatchError.
 * @template T
 * @param {(done: (error: grpc.ServiceError | null, value?: T) => void) => unknown} start
 * @returns {Promise<T>}
 */
function unary(start) {
  return new Promise((resolve, reject) => {
    start((error, value) => (error ? reject(toBatchError(error)) : resolve(/** @type {T} */ (value))));
  });
}

/**
 * Ends a stream the caller stopped reading (a `break`), or one that failed; its late CANCELLED error is dropped.
 * @param {grpc.ClientReadableStream<unknown>} call
 */
function end(call) {
  call.on('error', () => {});
  call.cancel();
}

/**
 * A request body as JSON text. NaN and the infinities are refused here: JSON has none (JSON.stringify would
 * silently send null instead).
 * @param {string} customId
 * @param {Record<string, JSONValue> | string} body
 * @returns {string}
 */
function jsonText(customId, body) {
  if (typeof body === 'string') return body;
  return JSON.stringify(body, (_key, value) => {
    if (typeof value === 'number' && !Number.isFinite(value)) {
      throw new TypeError(`otari batch: body of ${JSON.stringify(customId)}: ${value} is not a JSON number`);
    }
    return value;
  });
}
