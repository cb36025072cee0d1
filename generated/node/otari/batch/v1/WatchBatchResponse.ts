// Original file: protos/otari/batch/v1/batch_service.proto

import type { BatchEvent as _otari_batch_v1_BatchEvent, BatchEvent__Output as _otari_batch_v1_BatchEvent__Output } from '../../../otari/batch/v1/BatchEvent';

/**
 * One event of a WatchBatch stream.
 */
export interface WatchBatchResponse {
  /**
   * The event.
   */
  'event'?: (_otari_batch_v1_BatchEvent | null);
}

/**
 * One event of a WatchBatch stream.
 */
export interface WatchBatchResponse__Output {
  /**
   * The event.
   */
  'event': (_otari_batch_v1_BatchEvent__Output | null);
}
