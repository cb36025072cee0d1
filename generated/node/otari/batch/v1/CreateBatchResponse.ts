// Original file: protos/otari/batch/v1/batch_service.proto

import type { Batch as _otari_batch_v1_Batch, Batch__Output as _otari_batch_v1_Batch__Output } from '../../../otari/batch/v1/Batch';

/**
 * The batch that was created.
 */
export interface CreateBatchResponse {
  /**
   * The new batch, usually in BATCH_STATUS_VALIDATING. Keep `id` and `provider` for later calls.
   */
  'batch'?: (_otari_batch_v1_Batch | null);
}

/**
 * The batch that was created.
 */
export interface CreateBatchResponse__Output {
  /**
   * The new batch, usually in BATCH_STATUS_VALIDATING. Keep `id` and `provider` for later calls.
   */
  'batch': (_otari_batch_v1_Batch__Output | null);
}
