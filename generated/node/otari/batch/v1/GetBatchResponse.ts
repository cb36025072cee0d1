// Original file: protos/otari/batch/v1/batch_service.proto

import type { Batch as _otari_batch_v1_Batch, Batch__Output as _otari_batch_v1_Batch__Output } from '../../../otari/batch/v1/Batch';

/**
 * The batch asked for.
 */
export interface GetBatchResponse {
  /**
   * The batch's current state.
   */
  'batch'?: (_otari_batch_v1_Batch | null);
}

/**
 * The batch asked for.
 */
export interface GetBatchResponse__Output {
  /**
   * The batch's current state.
   */
  'batch': (_otari_batch_v1_Batch__Output | null);
}
