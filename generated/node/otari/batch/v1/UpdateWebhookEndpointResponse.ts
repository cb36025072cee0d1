// Original file: protos/otari/batch/v1/webhook_service.proto

import type { WebhookEndpoint as _otari_batch_v1_WebhookEndpoint, WebhookEndpoint__Output as _otari_batch_v1_WebhookEndpoint__Output } from '../../../otari/batch/v1/WebhookEndpoint';

/**
 * The endpoint changed.
 */
export interface UpdateWebhookEndpointResponse {
  /**
   * It, as it is now.
   */
  'endpoint'?: (_otari_batch_v1_WebhookEndpoint | null);
}

/**
 * The endpoint changed.
 */
export interface UpdateWebhookEndpointResponse__Output {
  /**
   * It, as it is now.
   */
  'endpoint': (_otari_batch_v1_WebhookEndpoint__Output | null);
}
