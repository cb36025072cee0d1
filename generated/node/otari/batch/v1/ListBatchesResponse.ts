// Original file: protos/otari/batch/v1/batch_service.proto

import type { Batch as _otari_batch_v1_Batch, Batch__Output as _otari_batch_v1_Batch__Output } from '../../../otari/batch/v1/Batch';

/**
 * A page of batches.
 */
export interface ListBatchesResponse {
  /**
   * The caller's batches, newest first.
   */
  'batches'?: (_otari_batch_v1_Batch)[];
  /**
   * Pass as page_token to get the next page; empty when there are no more batches.
   */
  'nextPageToken'?: (string);
  /**
   * Providers whose newest batches the gateway could not list for this page (it or the provider did not
   * answer): batches made outside this service with them may be missing until a later listing. Batches this
   * service has shown you are listed either way.
   */
  'incompleteProviders'?: (string)[];
}

/**
 * A page of batches.
 */
export interface ListBatchesResponse__Output {
  /**
   * The caller's batches, newest first.
   */
  'batches': (_otari_batch_v1_Batch__Output)[];
  /**
   * Pass as page_token to get the next page; empty when there are no more batches.
   */
  'nextPageToken': (string);
  /**
   * Providers whose newest batches the gateway could not list for this page (it or the provider did not
   * answer): batches made outside this service with them may be missing until a later listing. Batches this
   * service has shown you are listed either way.
   */
  'incompleteProviders': (string)[];
}
