// Original file: protos/otari/batch/v1/batch_service.proto


/**
 * Which batches to list.
 */
export interface ListBatchesRequest {
  /**
   * The provider whose batches to list, for example "openai". Empty: every provider you have batches with
   * through this service.
   */
  'provider'?: (string);
  /**
   * How many batches at most in this page; 0 means 20, more than 100 is treated as 100. Negative is invalid.
   */
  'pageSize'?: (number);
  /**
   * The next_page_token of the previous page, to continue; empty for the first page. A token is bound to the
   * provider it was issued for.
   */
  'pageToken'?: (string);
}

/**
 * Which batches to list.
 */
export interface ListBatchesRequest__Output {
  /**
   * The provider whose batches to list, for example "openai". Empty: every provider you have batches with
   * through this service.
   */
  'provider': (string);
  /**
   * How many batches at most in this page; 0 means 20, more than 100 is treated as 100. Negative is invalid.
   */
  'pageSize': (number);
  /**
   * The next_page_token of the previous page, to continue; empty for the first page. A token is bound to the
   * provider it was issued for.
   */
  'pageToken': (string);
}
