// Original file: protos/otari/batch/v1/batch_service.proto


/**
 * Which batch to cancel.
 */
export interface CancelBatchRequest {
  /**
   * The batch id. Required.
   */
  'batchId'?: (string);
  /**
   * The provider that holds the batch (Batch.provider). Optional for a batch this service has already shown
   * you; required otherwise.
   */
  'provider'?: (string);
}

/**
 * Which batch to cancel.
 */
export interface CancelBatchRequest__Output {
  /**
   * The batch id. Required.
   */
  'batchId': (string);
  /**
   * The provider that holds the batch (Batch.provider). Optional for a batch this service has already shown
   * you; required otherwise.
   */
  'provider': (string);
}
