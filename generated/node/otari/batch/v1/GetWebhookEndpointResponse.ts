// Original file: protos/otari/batch/v1/webhook_service.proto

import type { WebhookEndpoint as _otari_batch_v1_WebhookEndpoint, WebhookEndpoint__Output as _otari_batch_v1_WebhookEndpoint__Output } from '../../../otari/batch/v1/WebhookEndpoint';

/**
 * The endpoint asked for.
 */
export interface GetWebhookEndpointResponse {
  /**
   * It.
   */
  'endpoint'?: (_otari_batch_v1_WebhookEndpoint | null);
}

/**
 * The endpoint asked for.
 */
export interface GetWebhookEndpointResponse__Output {
  /**
   * It.
   */
  'endpoint': (_otari_batch_v1_WebhookEndpoint__Output | null);
}
