// Original file: protos/otari/batch/v1/batch_service.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Which batch's results to stream.
 */
export interface StreamResultsRequest {
  /**
   * The batch id. Required.
   */
  'batchId'?: (string);
  /**
   * The provider that holds the batch (Batch.provider). Optional for a batch this service has already shown
   * you; required otherwise.
   */
  'provider'?: (string);
  /**
   * Resume: the index of the first result to send (first_index + the number of results received); 0 sends
   * all. Not negative.
   */
  'startIndex'?: (number | string | Long);
  /**
   * When set, a batch that is not yet completed is waited for (bounded by the call's deadline), with progress
   * messages meanwhile, then its results stream. Unset, such a batch gets FAILED_PRECONDITION at once.
   */
  'wait'?: (boolean);
}

/**
 * Which batch's results to stream.
 */
export interface StreamResultsRequest__Output {
  /**
   * The batch id. Required.
   */
  'batchId': (string);
  /**
   * The provider that holds the batch (Batch.provider). Optional for a batch this service has already shown
   * you; required otherwise.
   */
  'provider': (string);
  /**
   * Resume: the index of the first result to send (first_index + the number of results received); 0 sends
   * all. Not negative.
   */
  'startIndex': (number);
  /**
   * When set, a batch that is not yet completed is waited for (bounded by the call's deadline), with progress
   * messages meanwhile, then its results stream. Unset, such a batch gets FAILED_PRECONDITION at once.
   */
  'wait': (boolean);
}
