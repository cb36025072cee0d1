// Original file: protos/otari/batch/v1/result.proto

import type { ChatCompletion as _otari_batch_v1_ChatCompletion, ChatCompletion__Output as _otari_batch_v1_ChatCompletion__Output } from '../../../otari/batch/v1/ChatCompletion';
import type { ResultError as _otari_batch_v1_ResultError, ResultError__Output as _otari_batch_v1_ResultError__Output } from '../../../otari/batch/v1/ResultError';

/**
 * The outcome of one request of a completed batch.
 */
export interface BatchResult {
  /**
   * The custom_id the request was given at creation.
   */
  'customId'?: (string);
  /**
   * The chat completion the request produced.
   */
  'completion'?: (_otari_batch_v1_ChatCompletion | null);
  /**
   * Why the request failed.
   */
  'error'?: (_otari_batch_v1_ResultError | null);
  /**
   * How many times the request was tried: 1, or more when it was re-run (CreateBatchRequest.max_attempts). The
   * outcome is its last try's.
   */
  'attempts'?: (number);
  /**
   * Exactly one of these is set.
   */
  'outcome'?: "completion"|"error";
}

/**
 * The outcome of one request of a completed batch.
 */
export interface BatchResult__Output {
  /**
   * The custom_id the request was given at creation.
   */
  'customId': (string);
  /**
   * The chat completion the request produced.
   */
  'completion'?: (_otari_batch_v1_ChatCompletion__Output | null);
  /**
   * Why the request failed.
   */
  'error'?: (_otari_batch_v1_ResultError__Output | null);
  /**
   * How many times the request was tried: 1, or more when it was re-run (CreateBatchRequest.max_attempts). The
   * outcome is its last try's.
   */
  'attempts': (number);
  /**
   * Exactly one of these is set.
   */
  'outcome'?: "completion"|"error";
}
