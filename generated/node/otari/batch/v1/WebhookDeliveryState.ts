// Original file: protos/otari/batch/v1/webhook_service.proto

/**
 * Where a delivery is.
 */
export const WebhookDeliveryState = {
  /**
   * Not sent.
   */
  WEBHOOK_DELIVERY_STATE_UNSPECIFIED: 'WEBHOOK_DELIVERY_STATE_UNSPECIFIED',
  /**
   * Waiting for its next try (next_attempt_time), or for its endpoint to be enabled again.
   */
  WEBHOOK_DELIVERY_STATE_PENDING: 'WEBHOOK_DELIVERY_STATE_PENDING',
  /**
   * The receiver answered 2xx.
   */
  WEBHOOK_DELIVERY_STATE_DELIVERED: 'WEBHOOK_DELIVERY_STATE_DELIVERED',
  /**
   * Not sent: a newer change of the same batch was delivered instead.
   */
  WEBHOOK_DELIVERY_STATE_SUPERSEDED: 'WEBHOOK_DELIVERY_STATE_SUPERSEDED',
  /**
   * Given up: the retry window ended, or you may no longer see the batch.
   */
  WEBHOOK_DELIVERY_STATE_DROPPED: 'WEBHOOK_DELIVERY_STATE_DROPPED',
} as const;

/**
 * Where a delivery is.
 */
export type WebhookDeliveryState =
  /**
   * Not sent.
   */
  | 'WEBHOOK_DELIVERY_STATE_UNSPECIFIED'
  | 0
  /**
   * Waiting for its next try (next_attempt_time), or for its endpoint to be enabled again.
   */
  | 'WEBHOOK_DELIVERY_STATE_PENDING'
  | 1
  /**
   * The receiver answered 2xx.
   */
  | 'WEBHOOK_DELIVERY_STATE_DELIVERED'
  | 2
  /**
   * Not sent: a newer change of the same batch was delivered instead.
   */
  | 'WEBHOOK_DELIVERY_STATE_SUPERSEDED'
  | 3
  /**
   * Given up: the retry window ended, or you may no longer see the batch.
   */
  | 'WEBHOOK_DELIVERY_STATE_DROPPED'
  | 4

/**
 * Where a delivery is.
 */
export type WebhookDeliveryState__Output = typeof WebhookDeliveryState[keyof typeof WebhookDeliveryState]
