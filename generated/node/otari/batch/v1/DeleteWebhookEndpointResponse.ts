// Original file: protos/otari/batch/v1/webhook_service.proto


/**
 * The endpoint is gone.
 */
export interface DeleteWebhookEndpointResponse {
}

/**
 * The endpoint is gone.
 */
export interface DeleteWebhookEndpointResponse__Output {
}
