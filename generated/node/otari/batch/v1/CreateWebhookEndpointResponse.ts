// Original file: protos/otari/batch/v1/webhook_service.proto

import type { WebhookEndpoint as _otari_batch_v1_WebhookEndpoint, WebhookEndpoint__Output as _otari_batch_v1_WebhookEndpoint__Output } from '../../../otari/batch/v1/WebhookEndpoint';

/**
 * The endpoint registered, and its secret.
 */
export interface CreateWebhookEndpointResponse {
  /**
   * The new endpoint, enabled.
   */
  'endpoint'?: (_otari_batch_v1_WebhookEndpoint | null);
  /**
   * The secret its deliveries are signed with ("whsec_...", Standard Webhooks' form). Shown only here.
   */
  'signingSecret'?: (string);
}

/**
 * The endpoint registered, and its secret.
 */
export interface CreateWebhookEndpointResponse__Output {
  /**
   * The new endpoint, enabled.
   */
  'endpoint': (_otari_batch_v1_WebhookEndpoint__Output | null);
  /**
   * The secret its deliveries are signed with ("whsec_...", Standard Webhooks' form). Shown only here.
   */
  'signingSecret': (string);
}
