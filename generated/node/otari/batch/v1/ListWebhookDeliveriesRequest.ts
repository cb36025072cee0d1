// Original file: protos/otari/batch/v1/webhook_service.proto


/**
 * Which endpoint's deliveries.
 */
export interface ListWebhookDeliveriesRequest {
  /**
   * Required.
   */
  'endpointId'?: (string);
  /**
   * How many at most; 0 means 20, more than 100 is treated as 100. Negative is invalid.
   */
  'pageSize'?: (number);
}

/**
 * Which endpoint's deliveries.
 */
export interface ListWebhookDeliveriesRequest__Output {
  /**
   * Required.
   */
  'endpointId': (string);
  /**
   * How many at most; 0 means 20, more than 100 is treated as 100. Negative is invalid.
   */
  'pageSize': (number);
}
