// Original file: protos/otari/batch/v1/webhook_service.proto


/**
 * Where to send a test event.
 */
export interface SendTestWebhookRequest {
  /**
   * Required.
   */
  'endpointId'?: (string);
}

/**
 * Where to send a test event.
 */
export interface SendTestWebhookRequest__Output {
  /**
   * Required.
   */
  'endpointId': (string);
}
