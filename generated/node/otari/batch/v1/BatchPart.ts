// Original file: protos/otari/batch/v1/batch.proto

import type { BatchStatus as _otari_batch_v1_BatchStatus, BatchStatus__Output as _otari_batch_v1_BatchStatus__Output } from '../../../otari/batch/v1/BatchStatus';
import type { RequestCounts as _otari_batch_v1_RequestCounts, RequestCounts__Output as _otari_batch_v1_RequestCounts__Output } from '../../../otari/batch/v1/RequestCounts';
import type { Long } from '@grpc/proto-loader';

/**
 * One upstream batch a batch is made of: the gateway's batch of some of its requests.
 */
export interface BatchPart {
  /**
   * The upstream batch's id at the gateway (a GetBatch with it and the provider shows it alone).
   */
  'id'?: (string);
  /**
   * The index of the part's first request among the batch's requests as sent; its requests follow in order.
   */
  'firstRequest'?: (number | string | Long);
  /**
   * How many requests the part holds.
   */
  'requestCount'?: (number | string | Long);
  /**
   * The part's own status.
   */
  'status'?: (_otari_batch_v1_BatchStatus);
  /**
   * The part's status exactly as the gateway sent it.
   */
  'upstreamStatus'?: (string);
  /**
   * The part's own request counts.
   */
  'requestCounts'?: (_otari_batch_v1_RequestCounts | null);
  /**
   * Which try of its requests the part is: 1 for the parts the batch was split into, 2 and up for re-runs (of
   * the failed requests of one part: `first_request` is then the first of them).
   */
  'attempt'?: (number);
}

/**
 * One upstream batch a batch is made of: the gateway's batch of some of its requests.
 */
export interface BatchPart__Output {
  /**
   * The upstream batch's id at the gateway (a GetBatch with it and the provider shows it alone).
   */
  'id': (string);
  /**
   * The index of the part's first request among the batch's requests as sent; its requests follow in order.
   */
  'firstRequest': (number);
  /**
   * How many requests the part holds.
   */
  'requestCount': (number);
  /**
   * The part's own status.
   */
  'status': (_otari_batch_v1_BatchStatus__Output);
  /**
   * The part's status exactly as the gateway sent it.
   */
  'upstreamStatus': (string);
  /**
   * The part's own request counts.
   */
  'requestCounts': (_otari_batch_v1_RequestCounts__Output | null);
  /**
   * Which try of its requests the part is: 1 for the parts the batch was split into, 2 and up for re-runs (of
   * the failed requests of one part: `first_request` is then the first of them).
   */
  'attempt': (number);
}
