// Original file: protos/otari/batch/v1/batch_service.proto

import type { Batch as _otari_batch_v1_Batch, Batch__Output as _otari_batch_v1_Batch__Output } from '../../../otari/batch/v1/Batch';

/**
 * The batch after waiting.
 */
export interface WaitBatchResponse {
  /**
   * The batch's latest state.
   */
  'batch'?: (_otari_batch_v1_Batch | null);
  /**
   * True when the batch is terminal; false when the timeout passed first.
   */
  'done'?: (boolean);
}

/**
 * The batch after waiting.
 */
export interface WaitBatchResponse__Output {
  /**
   * The batch's latest state.
   */
  'batch': (_otari_batch_v1_Batch__Output | null);
  /**
   * True when the batch is terminal; false when the timeout passed first.
   */
  'done': (boolean);
}
