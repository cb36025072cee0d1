// Original file: protos/otari/batch/v1/webhook_service.proto

import type { WebhookEndpoint as _otari_batch_v1_WebhookEndpoint, WebhookEndpoint__Output as _otari_batch_v1_WebhookEndpoint__Output } from '../../../otari/batch/v1/WebhookEndpoint';

/**
 * Your endpoints, oldest first (at most LIMIT_ENDPOINTS_PER_CALLER).
 */
export interface ListWebhookEndpointsResponse {
  /**
   * Them.
   */
  'endpoints'?: (_otari_batch_v1_WebhookEndpoint)[];
}

/**
 * Your endpoints, oldest first (at most LIMIT_ENDPOINTS_PER_CALLER).
 */
export interface ListWebhookEndpointsResponse__Output {
  /**
   * Them.
   */
  'endpoints': (_otari_batch_v1_WebhookEndpoint__Output)[];
}
