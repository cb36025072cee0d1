// Original file: protos/otari/batch/v1/webhook_service.proto


/**
 * Which endpoint to delete.
 */
export interface DeleteWebhookEndpointRequest {
  /**
   * Required.
   */
  'endpointId'?: (string);
}

/**
 * Which endpoint to delete.
 */
export interface DeleteWebhookEndpointRequest__Output {
  /**
   * Required.
   */
  'endpointId': (string);
}
