// Original file: protos/otari/batch/v1/batch_service.proto

import type { BatchEvent as _otari_batch_v1_BatchEvent, BatchEvent__Output as _otari_batch_v1_BatchEvent__Output } from '../../../otari/batch/v1/BatchEvent';

/**
 * One event of a WatchBatches stream.
 */
export interface WatchBatchesResponse {
  /**
   * The event; event.batch.id says which batch it is about.
   */
  'event'?: (_otari_batch_v1_BatchEvent | null);
}

/**
 * One event of a WatchBatches stream.
 */
export interface WatchBatchesResponse__Output {
  /**
   * The event; event.batch.id says which batch it is about.
   */
  'event': (_otari_batch_v1_BatchEvent__Output | null);
}
