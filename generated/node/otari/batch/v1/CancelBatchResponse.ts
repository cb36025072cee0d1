// Original file: protos/otari/batch/v1/batch_service.proto

import type { Batch as _otari_batch_v1_Batch, Batch__Output as _otari_batch_v1_Batch__Output } from '../../../otari/batch/v1/Batch';

/**
 * The batch after the cancel was asked for.
 */
export interface CancelBatchResponse {
  /**
   * The batch, usually in BATCH_STATUS_CANCELLING.
   */
  'batch'?: (_otari_batch_v1_Batch | null);
}

/**
 * The batch after the cancel was asked for.
 */
export interface CancelBatchResponse__Output {
  /**
   * The batch, usually in BATCH_STATUS_CANCELLING.
   */
  'batch': (_otari_batch_v1_Batch__Output | null);
}
