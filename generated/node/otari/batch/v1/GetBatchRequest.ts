// Original file: protos/otari/batch/v1/batch_service.proto


/**
 * Which batch to get.
 */
export interface GetBatchRequest {
  /**
   * The batch id. Required.
   */
  'batchId'?: (string);
  /**
   * The provider that holds the batch (Batch.provider), for example "openai". Optional for a batch this
   * service has already shown you; required otherwise.
   */
  'provider'?: (string);
}

/**
 * Which batch to get.
 */
export interface GetBatchRequest__Output {
  /**
   * The batch id. Required.
   */
  'batchId': (string);
  /**
   * The provider that holds the batch (Batch.provider), for example "openai". Optional for a batch this
   * service has already shown you; required otherwise.
   */
  'provider': (string);
}
