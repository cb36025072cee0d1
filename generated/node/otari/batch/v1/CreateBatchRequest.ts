// Original file: protos/otari/batch/v1/batch_service.proto

import type { BatchRequestItem as _otari_batch_v1_BatchRequestItem, BatchRequestItem__Output as _otari_batch_v1_BatchRequestItem__Output } from '../../../otari/batch/v1/BatchRequestItem';

/**
 * The batch to create.
 */
export interface CreateBatchRequest {
  /**
   * The model as "provider:model" (or "provider/model"), for example "openai:gpt-4o-mini". Required.
   */
  'model'?: (string);
  /**
   * The requests, at least one, as many as the message limit allows. Up to 10,000 (and PART_MAX_BYTES of bodies)
   * make one upstream batch, whose id the batch keeps; more are split into parts upstream, in order, of at most
   * PART_MAX_REQUESTS (10,000 by default, the gateway's limit) and PART_MAX_BYTES each, and answered as one batch
   * of the service's own id (see Batch.parts). The create is acknowledged once every part exists upstream; a part
   * refused cancels those made, and the call fails with its error.
   */
  'requests'?: (_otari_batch_v1_BatchRequestItem)[];
  /**
   * The completion window; empty means "24h", the only window most providers accept.
   */
  'completionWindow'?: (string);
  /**
   * Your key/value pairs, kept on the batch. At most 14 pairs: the provider takes 16, the gateway stamps
   * `otari_user_id` and the service one more, `otari_request_id` (with a request_id) or `otari_batch_part` (on each
   * part of a batch of several), keys you cannot set, nor `otari_request_digest`. Keys 1 to 64 characters, values
   * at most 512 characters.
   */
  'metadata'?: ({[key: string]: string});
  /**
   * The user the batch is billed to. Required with the gateway's master key; with an API key, optional and it
   * must be the key's own user.
   */
  'user'?: (string);
  /**
   * Optional idempotency key (AIP-155): a UUID such as "6f1c1f0e-3b1a-4c55-9d43-0f5a8e2d7c11". A retry with the
   * same request_id and the same request returns the first batch and creates nothing, also after a lost reply
   * or a server restart; the same request_id with a different request is ALREADY_EXISTS. It is stamped into
   * the batch metadata as `otari_request_id`, beside `otari_request_digest` (a hash of the request): after a
   * lost reply, the batch found upstream is taken as this request's only when both match (and, with the master
   * key, its user).
   */
  'requestId'?: (string);
  /**
   * How many times each request is tried at most: 1 (or 0, the default) is once; 2 to 5 re-run the requests whose
   * failure is retryable, as follow-up parts of the batch, until they succeed or the attempts are spent, and the
   * batch completes once nothing is pending. Retryable, and nothing else: an error with HTTP status 429, 500, 502,
   * 503 or 504, the error types server_error, rate_limit_exceeded and timeouts, and every request of a part that
   * expired; never 400, 401, 403, 404, 422 or a refusal. A batch with re-runs is one of the service's own id (see
   * Batch.parts) however small. To re-run while no one calls, the service keeps your key for this batch alone,
   * encrypted, and uses it only for this batch's polls, results and re-runs; it deletes it when the batch ends, and
   * stops re-running at the first 401. The service reads each part's results when the part completes (to find
   * its failures): the gateway bills them then.
   */
  'maxAttempts'?: (number);
}

/**
 * The batch to create.
 */
export interface CreateBatchRequest__Output {
  /**
   * The model as "provider:model" (or "provider/model"), for example "openai:gpt-4o-mini". Required.
   */
  'model': (string);
  /**
   * The requests, at least one, as many as the message limit allows. Up to 10,000 (and PART_MAX_BYTES of bodies)
   * make one upstream batch, whose id the batch keeps; more are split into parts upstream, in order, of at most
   * PART_MAX_REQUESTS (10,000 by default, the gateway's limit) and PART_MAX_BYTES each, and answered as one batch
   * of the service's own id (see Batch.parts). The create is acknowledged once every part exists upstream; a part
   * refused cancels those made, and the call fails with its error.
   */
  'requests': (_otari_batch_v1_BatchRequestItem__Output)[];
  /**
   * The completion window; empty means "24h", the only window most providers accept.
   */
  'completionWindow': (string);
  /**
   * Your key/value pairs, kept on the batch. At most 14 pairs: the provider takes 16, the gateway stamps
   * `otari_user_id` and the service one more, `otari_request_id` (with a request_id) or `otari_batch_part` (on each
   * part of a batch of several), keys you cannot set, nor `otari_request_digest`. Keys 1 to 64 characters, values
   * at most 512 characters.
   */
  'metadata': ({[key: string]: string});
  /**
   * The user the batch is billed to. Required with the gateway's master key; with an API key, optional and it
   * must be the key's own user.
   */
  'user': (string);
  /**
   * Optional idempotency key (AIP-155): a UUID such as "6f1c1f0e-3b1a-4c55-9d43-0f5a8e2d7c11". A retry with the
   * same request_id and the same request returns the first batch and creates nothing, also after a lost reply
   * or a server restart; the same request_id with a different request is ALREADY_EXISTS. It is stamped into
   * the batch metadata as `otari_request_id`, beside `otari_request_digest` (a hash of the request): after a
   * lost reply, the batch found upstream is taken as this request's only when both match (and, with the master
   * key, its user).
   */
  'requestId': (string);
  /**
   * How many times each request is tried at most: 1 (or 0, the default) is once; 2 to 5 re-run the requests whose
   * failure is retryable, as follow-up parts of the batch, until they succeed or the attempts are spent, and the
   * batch completes once nothing is pending. Retryable, and nothing else: an error with HTTP status 429, 500, 502,
   * 503 or 504, the error types server_error, rate_limit_exceeded and timeouts, and every request of a part that
   * expired; never 400, 401, 403, 404, 422 or a refusal. A batch with re-runs is one of the service's own id (see
   * Batch.parts) however small. To re-run while no one calls, the service keeps your key for this batch alone,
   * encrypted, and uses it only for this batch's polls, results and re-runs; it deletes it when the batch ends, and
   * stops re-running at the first 401. The service reads each part's results when the part completes (to find
   * its failures): the gateway bills them then.
   */
  'maxAttempts': (number);
}
