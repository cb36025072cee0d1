// Original file: protos/otari/batch/v1/batch_service.proto

import type { Batch as _otari_batch_v1_Batch, Batch__Output as _otari_batch_v1_Batch__Output } from '../../../otari/batch/v1/Batch';

/**
 * The batch the upload created.
 */
export interface UploadBatchResponse {
  /**
   * The new batch, as CreateBatch answers it.
   */
  'batch'?: (_otari_batch_v1_Batch | null);
}

/**
 * The batch the upload created.
 */
export interface UploadBatchResponse__Output {
  /**
   * The new batch, as CreateBatch answers it.
   */
  'batch': (_otari_batch_v1_Batch__Output | null);
}
