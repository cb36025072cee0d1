// @ts-check
// BatchError: a failed call with the google.rpc details of its `grpc-status-details-bin` trailer.
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

// The google.rpc messages the service sends (google/rpc/status.proto, error_details.proto), only the fields read
// here: decoding needs their wire shape, not the whole googleapis tree.
const root = protobuf.Root.fromJSON(/** @type {protobuf.INamespace} */ ({
  nested: {
    google: {
      nested: {
        protobuf: {
          nested: {
            Any: { fields: { typeUrl: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } },
            Duration: { fields: { seconds: { type: 'int64', id: 1 }, nanos: { type: 'int32', id: 2 } } },
          },
        },
        rpc: {
          nested: {
            Status: {
              fields: {
                code: { type: 'int32', id: 1 },
                message: { type: 'string', id: 2 },
                details: { rule: 'repeated', type: 'google.protobuf.Any', id: 3 },
              },
            },
            ErrorInfo: {
              fields: {
                reason: { type: 'string', id: 1 },
                domain: { type: 'string', id: 2 },
                metadata: { keyType: 'string', type: 'string', id: 3 },
              },
            },
            BadRequest: {
              fields: { fieldViolations: { rule: 'repeated', type: 'FieldViolation', id: 1 } },
              nested: {
                FieldViolation: {
                  fields: { field: { type: 'string', id: 1 }, description: { type: 'string', id: 2 } },
                },
              },
            },
            RetryInfo: { fields: { retryDelay: { type: 'google.protobuf.Duration', id: 1 } } },
          },
        },
      },
    },
  },
}));
const Status = root.lookupType('google.rpc.Status');
const ErrorInfo = root.lookupType('google.rpc.ErrorInfo');
const BadRequest = root.lookupType('google.rpc.BadRequest');
const RetryInfo = root.lookupType('google.rpc.RetryInfo');
const TO_OBJECT = { longs: Number, defaults: true, arrays: true, objects: true };

/**
 * One bad field: `field` is its path as a JavaScript caller names it (`requests[0].bodyJson`, the request object's
 * own keys), `protoField` as the contract does (`requests[0].body_json`). A map key in brackets is kept as sent.
 * @typedef {{field: string, protoField: string, description: string}} FieldViolation
 */

/** A failed BatchService call: its gRPC status and the google.rpc details the service attaches to every error. */
export class BatchError extends Error {
  /**
   * @param {grpc.ServiceError} error the error grpc-js gave
   */
  constructor(error) {
    super(error.details || error.message, { cause: error });
    this.name = 'BatchError';
    /** The gRPC status code, e.g. `grpc.status.NOT_FOUND` (5). */
    this.code = error.code;
    /** The code's name, e.g. "NOT_FOUND". */
    this.codeName = grpc.status[error.code] ?? String(error.code);
    /** google.rpc.ErrorInfo.reason, e.g. "BATCH_NOT_COMPLETED"; "" when the error carries none. */
    this.reason = '';
    /** google.rpc.ErrorInfo.domain: "batch.otari.mozilla.ai". */
    this.domain = '';
    /** @type {Record<string, string>} google.rpc.ErrorInfo.metadata, e.g. {batch_id, status, http_status}. */
    this.metadata = {};
    /** @type {FieldViolation[]} google.rpc.BadRequest's field violations, e.g. field "requests[3].customId". */
    this.fieldViolations = [];
    /** @type {number | null} google.rpc.RetryInfo's delay in milliseconds; null when the error carries none. */
    this.retryDelayMs = null;
    /** @type {grpc.Metadata | undefined} The call's trailing metadata. */
    this.trailers = error.metadata;

    const raw = error.metadata?.get('grpc-status-details-bin')?.[0];
    if (raw instanceof Uint8Array) {
      const status = /** @type {any} */ (Status.toObject(Status.decode(raw), TO_OBJECT));
      for (const any of status.details) {
        const type = String(any.typeUrl).split('/').pop();
        if (type === 'google.rpc.ErrorInfo') {
          const info = /** @type {any} */ (ErrorInfo.toObject(ErrorInfo.decode(any.value), TO_OBJECT));
          this.reason = info.reason;
          this.domain = info.domain;
          this.metadata = info.metadata;
        } else if (type === 'google.rpc.BadRequest') {
          const bad = /** @type {any} */ (BadRequest.toObject(BadRequest.decode(any.value), TO_OBJECT));
          this.fieldViolations = bad.fieldViolations.map(
            (/** @type {{field: string, description: string}} */ v) => ({
              field: camelPath(v.field), protoField: v.field, description: v.description,
            }));
        } else if (type === 'google.rpc.RetryInfo') {
          const retry = /** @type {any} */ (RetryInfo.toObject(RetryInfo.decode(any.value), TO_OBJECT));
          const delay = retry.retryDelay ?? { seconds: 0, nanos: 0 };
          this.retryDelayMs = Number(delay.seconds) * 1000 + Math.round(delay.nanos / 1e6);
        }
      }
    }
  }

  /** True for UNAVAILABLE, and for any error carrying RetryInfo: the same call may succeed later. */
  get retryable() {
    return this.code === grpc.status.UNAVAILABLE || this.retryDelayMs !== null;
  }
}

/**
 * A BatchError for a grpc-js error; anything else is returned unchanged.
 * @param {unknown} error
 * @returns {unknown}
 */
export function toBatchError(error) {
  if (error instanceof BatchError) return error;
  if (error instanceof Error && typeof (/** @type {any} */ (error).code) === 'number' && 'metadata' in error) {
    return new BatchError(/** @type {grpc.ServiceError} */ (error));
  }
  return error;
}

/**
 * A field path in lowerCamelCase, as proto-loader names the fields (`requests[3].custom_id` ->
 * `requests[3].customId`); what stands in brackets (an index, a map key) is left as it is.
 * @param {string} path
 * @returns {string}
 */
export function camelPath(path) {
  return path.replace(/(\[[^\]]*\])|_([a-z0-9])/g, (_whole, bracket, letter) => bracket ?? letter.toUpperCase());
}
