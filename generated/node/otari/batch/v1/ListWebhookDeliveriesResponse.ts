// Original file: protos/otari/batch/v1/webhook_service.proto

import type { WebhookDelivery as _otari_batch_v1_WebhookDelivery, WebhookDelivery__Output as _otari_batch_v1_WebhookDelivery__Output } from '../../../otari/batch/v1/WebhookDelivery';

/**
 * An endpoint's deliveries.
 */
export interface ListWebhookDeliveriesResponse {
  /**
   * Newest first.
   */
  'deliveries'?: (_otari_batch_v1_WebhookDelivery)[];
}

/**
 * An endpoint's deliveries.
 */
export interface ListWebhookDeliveriesResponse__Output {
  /**
   * Newest first.
   */
  'deliveries': (_otari_batch_v1_WebhookDelivery__Output)[];
}
