// Original file: protos/otari/batch/v1/watch.proto


/**
 * Why an UNAVAILABLE or REMOVED event happened.
 */
export interface BatchProblem {
  /**
   * The gRPC status code name a call about this batch would get, for example "UNAVAILABLE" or "NOT_FOUND".
   */
  'code'?: (string);
  /**
   * The ErrorInfo reason, for example "GATEWAY_UNAVAILABLE" or "BATCH_NOT_FOUND".
   */
  'reason'?: (string);
  /**
   * For people.
   */
  'message'?: (string);
}

/**
 * Why an UNAVAILABLE or REMOVED event happened.
 */
export interface BatchProblem__Output {
  /**
   * The gRPC status code name a call about this batch would get, for example "UNAVAILABLE" or "NOT_FOUND".
   */
  'code': (string);
  /**
   * The ErrorInfo reason, for example "GATEWAY_UNAVAILABLE" or "BATCH_NOT_FOUND".
   */
  'reason': (string);
  /**
   * For people.
   */
  'message': (string);
}
