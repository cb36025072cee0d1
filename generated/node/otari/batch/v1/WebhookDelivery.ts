// Original file: protos/otari/batch/v1/webhook_service.proto

import type { WebhookDeliveryState as _otari_batch_v1_WebhookDeliveryState, WebhookDeliveryState__Output as _otari_batch_v1_WebhookDeliveryState__Output } from '../../../otari/batch/v1/WebhookDeliveryState';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../../google/protobuf/Timestamp';

/**
 * One event for an endpoint, and how its delivery went.
 */
export interface WebhookDelivery {
  /**
   * Its webhook-id (the same on every try).
   */
  'webhookId'?: (string);
  /**
   * Its type: batch.completed, ...
   */
  'type'?: (string);
  /**
   * The batch it tells of.
   */
  'batchId'?: (string);
  /**
   * Where it is.
   */
  'state'?: (_otari_batch_v1_WebhookDeliveryState);
  /**
   * Tries so far.
   */
  'attempts'?: (number);
  /**
   * The receiver's last HTTP status; 0 when no answer came.
   */
  'lastStatusCode'?: (number);
  /**
   * Why the last try did not deliver it.
   */
  'lastError'?: (string);
  /**
   * When the change it tells of was recorded.
   */
  'createTime'?: (_google_protobuf_Timestamp | null);
  /**
   * When it is next tried (pending only).
   */
  'nextAttemptTime'?: (_google_protobuf_Timestamp | null);
  /**
   * When it was delivered, superseded or dropped.
   */
  'doneTime'?: (_google_protobuf_Timestamp | null);
}

/**
 * One event for an endpoint, and how its delivery went.
 */
export interface WebhookDelivery__Output {
  /**
   * Its webhook-id (the same on every try).
   */
  'webhookId': (string);
  /**
   * Its type: batch.completed, ...
   */
  'type': (string);
  /**
   * The batch it tells of.
   */
  'batchId': (string);
  /**
   * Where it is.
   */
  'state': (_otari_batch_v1_WebhookDeliveryState__Output);
  /**
   * Tries so far.
   */
  'attempts': (number);
  /**
   * The receiver's last HTTP status; 0 when no answer came.
   */
  'lastStatusCode': (number);
  /**
   * Why the last try did not deliver it.
   */
  'lastError': (string);
  /**
   * When the change it tells of was recorded.
   */
  'createTime': (_google_protobuf_Timestamp__Output | null);
  /**
   * When it is next tried (pending only).
   */
  'nextAttemptTime': (_google_protobuf_Timestamp__Output | null);
  /**
   * When it was delivered, superseded or dropped.
   */
  'doneTime': (_google_protobuf_Timestamp__Output | null);
}
