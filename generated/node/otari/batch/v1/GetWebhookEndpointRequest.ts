// Original file: protos/otari/batch/v1/webhook_service.proto


/**
 * Which endpoint.
 */
export interface GetWebhookEndpointRequest {
  /**
   * Required.
   */
  'endpointId'?: (string);
}

/**
 * Which endpoint.
 */
export interface GetWebhookEndpointRequest__Output {
  /**
   * Required.
   */
  'endpointId': (string);
}
