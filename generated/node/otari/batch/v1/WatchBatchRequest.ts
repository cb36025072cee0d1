// Original file: protos/otari/batch/v1/batch_service.proto


/**
 * Which batch to watch.
 */
export interface WatchBatchRequest {
  /**
   * The batch id. Required.
   */
  'batchId'?: (string);
  /**
   * The provider that holds the batch. Optional for a batch this service has already shown you.
   */
  'provider'?: (string);
  /**
   * Resume after the event that carried this token: the events since are replayed first; when there are none,
   * a heartbeat says so at once (the state you had is not sent again). Empty starts with a snapshot. A token
   * older than the revisions the service keeps gets FAILED_PRECONDITION: start over.
   */
  'resumeToken'?: (string);
}

/**
 * Which batch to watch.
 */
export interface WatchBatchRequest__Output {
  /**
   * The batch id. Required.
   */
  'batchId': (string);
  /**
   * The provider that holds the batch. Optional for a batch this service has already shown you.
   */
  'provider': (string);
  /**
   * Resume after the event that carried this token: the events since are replayed first; when there are none,
   * a heartbeat says so at once (the state you had is not sent again). Empty starts with a snapshot. A token
   * older than the revisions the service keeps gets FAILED_PRECONDITION: start over.
   */
  'resumeToken': (string);
}
