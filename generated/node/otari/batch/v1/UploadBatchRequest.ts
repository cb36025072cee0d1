// Original file: protos/otari/batch/v1/batch_service.proto

import type { CreateBatchRequest as _otari_batch_v1_CreateBatchRequest, CreateBatchRequest__Output as _otari_batch_v1_CreateBatchRequest__Output } from '../../../otari/batch/v1/CreateBatchRequest';
import type { RequestChunk as _otari_batch_v1_RequestChunk, RequestChunk__Output as _otari_batch_v1_RequestChunk__Output } from '../../../otari/batch/v1/RequestChunk';

/**
 * One message of an upload: the header first, then chunks of requests.
 */
export interface UploadBatchRequest {
  /**
   * The first message: the batch to create, with its requests empty.
   */
  'header'?: (_otari_batch_v1_CreateBatchRequest | null);
  /**
   * Every later message: the next requests, in order (a chunk of a few MiB is a good size).
   */
  'chunk'?: (_otari_batch_v1_RequestChunk | null);
  /**
   * Which this message is.
   */
  'item'?: "header"|"chunk";
}

/**
 * One message of an upload: the header first, then chunks of requests.
 */
export interface UploadBatchRequest__Output {
  /**
   * The first message: the batch to create, with its requests empty.
   */
  'header'?: (_otari_batch_v1_CreateBatchRequest__Output | null);
  /**
   * Every later message: the next requests, in order (a chunk of a few MiB is a good size).
   */
  'chunk'?: (_otari_batch_v1_RequestChunk__Output | null);
  /**
   * Which this message is.
   */
  'item'?: "header"|"chunk";
}
