// Original file: protos/otari/batch/v1/batch_service.proto

import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from '../../../google/protobuf/Duration';

/**
 * Which batch to wait for, and how long.
 */
export interface WaitBatchRequest {
  /**
   * The batch id. Required.
   */
  'batchId'?: (string);
  /**
   * The provider that holds the batch. Optional for a batch this service has already shown you.
   */
  'provider'?: (string);
  /**
   * How long to wait at most; unset means 60 s. At most 1 hour, and never past the call's deadline.
   */
  'timeout'?: (_google_protobuf_Duration | null);
}

/**
 * Which batch to wait for, and how long.
 */
export interface WaitBatchRequest__Output {
  /**
   * The batch id. Required.
   */
  'batchId': (string);
  /**
   * The provider that holds the batch. Optional for a batch this service has already shown you.
   */
  'provider': (string);
  /**
   * How long to wait at most; unset means 60 s. At most 1 hour, and never past the call's deadline.
   */
  'timeout': (_google_protobuf_Duration__Output | null);
}
