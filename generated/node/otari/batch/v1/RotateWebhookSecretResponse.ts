// Original file: protos/otari/batch/v1/webhook_service.proto

import type { WebhookEndpoint as _otari_batch_v1_WebhookEndpoint, WebhookEndpoint__Output as _otari_batch_v1_WebhookEndpoint__Output } from '../../../otari/batch/v1/WebhookEndpoint';

/**
 * The new secret.
 */
export interface RotateWebhookSecretResponse {
  /**
   * The endpoint, with previous_secret_expire_time.
   */
  'endpoint'?: (_otari_batch_v1_WebhookEndpoint | null);
  /**
   * The new signing secret. Shown only here.
   */
  'signingSecret'?: (string);
}

/**
 * The new secret.
 */
export interface RotateWebhookSecretResponse__Output {
  /**
   * The endpoint, with previous_secret_expire_time.
   */
  'endpoint': (_otari_batch_v1_WebhookEndpoint__Output | null);
  /**
   * The new signing secret. Shown only here.
   */
  'signingSecret': (string);
}
