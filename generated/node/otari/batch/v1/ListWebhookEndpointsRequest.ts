// Original file: protos/otari/batch/v1/webhook_service.proto


/**
 * Your endpoints.
 */
export interface ListWebhookEndpointsRequest {
}

/**
 * Your endpoints.
 */
export interface ListWebhookEndpointsRequest__Output {
}
