// Original file: protos/otari/batch/v1/batch_service.proto


/**
 * Which batches to watch.
 */
export interface WatchBatchesRequest {
  /**
   * The batch ids, at most 1,000, each one you have been shown through this service. Empty: every batch of
   * yours this service knows that is not yet terminal, and each batch you create or are shown while the
   * stream is open.
   */
  'batchIds'?: (string)[];
  /**
   * Resume after the event that carried this token (with the same batch_ids): the changes since are replayed,
   * and a snapshot of each batch new to you; a batch that did not change is not sent again, but for one another
   * replica changed in the moments before the token, which comes again as a snapshot (you may have it). Empty
   * starts with a snapshot of each batch. With nothing to send at once, a heartbeat opens the stream. A token older than the
   * revisions the service keeps gets FAILED_PRECONDITION: start over.
   */
  'resumeToken'?: (string);
}

/**
 * Which batches to watch.
 */
export interface WatchBatchesRequest__Output {
  /**
   * The batch ids, at most 1,000, each one you have been shown through this service. Empty: every batch of
   * yours this service knows that is not yet terminal, and each batch you create or are shown while the
   * stream is open.
   */
  'batchIds': (string)[];
  /**
   * Resume after the event that carried this token (with the same batch_ids): the changes since are replayed,
   * and a snapshot of each batch new to you; a batch that did not change is not sent again, but for one another
   * replica changed in the moments before the token, which comes again as a snapshot (you may have it). Empty
   * starts with a snapshot of each batch. With nothing to send at once, a heartbeat opens the stream. A token older than the
   * revisions the service keeps gets FAILED_PRECONDITION: start over.
   */
  'resumeToken': (string);
}
