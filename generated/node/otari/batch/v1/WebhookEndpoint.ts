// Original file: protos/otari/batch/v1/webhook_service.proto

import type { WebhookEvents as _otari_batch_v1_WebhookEvents, WebhookEvents__Output as _otari_batch_v1_WebhookEvents__Output } from '../../../otari/batch/v1/WebhookEvents';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../../google/protobuf/Timestamp';

/**
 * A registered endpoint.
 */
export interface WebhookEndpoint {
  /**
   * Assigned by the service ("whe_..."). Output only.
   */
  'id'?: (string);
  /**
   * Where deliveries are POSTed: https (plain http to loopback only, where the operator allows it for
   * development). The host's addresses must be public, or on the operator's allowlist (WEBHOOK_ALLOW).
   */
  'url'?: (string);
  /**
   * Which status changes it is sent.
   */
  'events'?: (_otari_batch_v1_WebhookEvents);
  /**
   * Only batches whose metadata carries each of these pairs; empty: every batch of yours.
   */
  'metadataFilter'?: ({[key: string]: string});
  /**
   * For people; at most 512 characters.
   */
  'description'?: (string);
  /**
   * False: nothing is sent to it; its deliveries wait (for the retry window) until it is enabled again.
   */
  'enabled'?: (boolean);
  /**
   * Why it is disabled: "disabled by its owner", its receiver answered 410 Gone, or the gateway refused the key it
   * was registered with. Empty when it is enabled. Output only.
   */
  'disabledReason'?: (string);
  /**
   * Output only.
   */
  'createTime'?: (_google_protobuf_Timestamp | null);
  /**
   * Output only.
   */
  'updateTime'?: (_google_protobuf_Timestamp | null);
  /**
   * While a rotation's overlap lasts, the previous secret signs too, until then. Unset otherwise. Output only.
   */
  'previousSecretExpireTime'?: (_google_protobuf_Timestamp | null);
}

/**
 * A registered endpoint.
 */
export interface WebhookEndpoint__Output {
  /**
   * Assigned by the service ("whe_..."). Output only.
   */
  'id': (string);
  /**
   * Where deliveries are POSTed: https (plain http to loopback only, where the operator allows it for
   * development). The host's addresses must be public, or on the operator's allowlist (WEBHOOK_ALLOW).
   */
  'url': (string);
  /**
   * Which status changes it is sent.
   */
  'events': (_otari_batch_v1_WebhookEvents__Output);
  /**
   * Only batches whose metadata carries each of these pairs; empty: every batch of yours.
   */
  'metadataFilter': ({[key: string]: string});
  /**
   * For people; at most 512 characters.
   */
  'description': (string);
  /**
   * False: nothing is sent to it; its deliveries wait (for the retry window) until it is enabled again.
   */
  'enabled': (boolean);
  /**
   * Why it is disabled: "disabled by its owner", its receiver answered 410 Gone, or the gateway refused the key it
   * was registered with. Empty when it is enabled. Output only.
   */
  'disabledReason': (string);
  /**
   * Output only.
   */
  'createTime': (_google_protobuf_Timestamp__Output | null);
  /**
   * Output only.
   */
  'updateTime': (_google_protobuf_Timestamp__Output | null);
  /**
   * While a rotation's overlap lasts, the previous secret signs too, until then. Unset otherwise. Output only.
   */
  'previousSecretExpireTime': (_google_protobuf_Timestamp__Output | null);
}
