// Original file: protos/otari/batch/v1/batch_service.proto

import type { BatchResult as _otari_batch_v1_BatchResult, BatchResult__Output as _otari_batch_v1_BatchResult__Output } from '../../../otari/batch/v1/BatchResult';
import type { Batch as _otari_batch_v1_Batch, Batch__Output as _otari_batch_v1_Batch__Output } from '../../../otari/batch/v1/Batch';
import type { Long } from '@grpc/proto-loader';

/**
 * One message of a StreamResults stream: a chunk of results, or (while `wait` waits) the batch's progress.
 */
export interface StreamResultsResponse {
  /**
   * Consecutive outcomes of the batch's requests, in the gateway's order. Empty on a progress message.
   */
  'results'?: (_otari_batch_v1_BatchResult)[];
  /**
   * The position of results[0] in the batch's results, from 0. The next chunk starts at
   * first_index + len(results).
   */
  'firstIndex'?: (number | string | Long);
  /**
   * How many results the batch has (its request_counts.total), on every message. A stream that ends OK with
   * fewer results than this means the gateway left some out.
   */
  'totalCount'?: (number | string | Long);
  /**
   * Only while `wait` waits: the batch's current state (status, request_counts), sent when it changes and as a
   * heartbeat. Unset on messages that carry results.
   */
  'progress'?: (_otari_batch_v1_Batch | null);
}

/**
 * One message of a StreamResults stream: a chunk of results, or (while `wait` waits) the batch's progress.
 */
export interface StreamResultsResponse__Output {
  /**
   * Consecutive outcomes of the batch's requests, in the gateway's order. Empty on a progress message.
   */
  'results': (_otari_batch_v1_BatchResult__Output)[];
  /**
   * The position of results[0] in the batch's results, from 0. The next chunk starts at
   * first_index + len(results).
   */
  'firstIndex': (number);
  /**
   * How many results the batch has (its request_counts.total), on every message. A stream that ends OK with
   * fewer results than this means the gateway left some out.
   */
  'totalCount': (number);
  /**
   * Only while `wait` waits: the batch's current state (status, request_counts), sent when it changes and as a
   * heartbeat. Unset on messages that carry results.
   */
  'progress': (_otari_batch_v1_Batch__Output | null);
}
