// Original file: protos/otari/batch/v1/batch_service.proto

import type { BatchRequestItem as _otari_batch_v1_BatchRequestItem, BatchRequestItem__Output as _otari_batch_v1_BatchRequestItem__Output } from '../../../otari/batch/v1/BatchRequestItem';

/**
 * Consecutive requests of an upload.
 */
export interface RequestChunk {
  /**
   * The requests, each as in CreateBatchRequest.requests. Numbered as that field is, so the chunks' bytes, one
   * after another, are the bytes of the batch's requests: the service keeps and reads them as they came.
   */
  'requests'?: (_otari_batch_v1_BatchRequestItem)[];
}

/**
 * Consecutive requests of an upload.
 */
export interface RequestChunk__Output {
  /**
   * The requests, each as in CreateBatchRequest.requests. Numbered as that field is, so the chunks' bytes, one
   * after another, are the bytes of the batch's requests: the service keeps and reads them as they came.
   */
  'requests': (_otari_batch_v1_BatchRequestItem__Output)[];
}
