// Original file: protos/otari/batch/v1/webhook_service.proto

import type { WebhookEvents as _otari_batch_v1_WebhookEvents, WebhookEvents__Output as _otari_batch_v1_WebhookEvents__Output } from '../../../otari/batch/v1/WebhookEvents';

/**
 * What to register.
 */
export interface CreateWebhookEndpointRequest {
  /**
   * Required; at most 2,048 characters. See WebhookEndpoint.url.
   */
  'url'?: (string);
  /**
   * Required.
   */
  'events'?: (_otari_batch_v1_WebhookEvents);
  /**
   * Optional; at most 16 pairs, keys 1..64 characters, values at most 512.
   */
  'metadataFilter'?: ({[key: string]: string});
  /**
   * Optional; at most 512 characters.
   */
  'description'?: (string);
}

/**
 * What to register.
 */
export interface CreateWebhookEndpointRequest__Output {
  /**
   * Required; at most 2,048 characters. See WebhookEndpoint.url.
   */
  'url': (string);
  /**
   * Required.
   */
  'events': (_otari_batch_v1_WebhookEvents__Output);
  /**
   * Optional; at most 16 pairs, keys 1..64 characters, values at most 512.
   */
  'metadataFilter': ({[key: string]: string});
  /**
   * Optional; at most 512 characters.
   */
  'description': (string);
}
