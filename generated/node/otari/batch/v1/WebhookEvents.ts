// Original file: protos/otari/batch/v1/webhook_service.proto

/**
 * Which status changes an endpoint is sent.
 */
export const WebhookEvents = {
  /**
   * Not valid.
   */
  WEBHOOK_EVENTS_UNSPECIFIED: 'WEBHOOK_EVENTS_UNSPECIFIED',
  /**
   * The moves to a terminal status: batch.completed, batch.failed, batch.expired, batch.cancelled.
   */
  WEBHOOK_EVENTS_TERMINAL: 'WEBHOOK_EVENTS_TERMINAL',
  /**
   * Every move of the status (batch.validating, batch.in_progress, ... and the terminal ones). A change of the
   * counts alone is no move.
   */
  WEBHOOK_EVENTS_ALL: 'WEBHOOK_EVENTS_ALL',
} as const;

/**
 * Which status changes an endpoint is sent.
 */
export type WebhookEvents =
  /**
   * Not valid.
   */
  | 'WEBHOOK_EVENTS_UNSPECIFIED'
  | 0
  /**
   * The moves to a terminal status: batch.completed, batch.failed, batch.expired, batch.cancelled.
   */
  | 'WEBHOOK_EVENTS_TERMINAL'
  | 1
  /**
   * Every move of the status (batch.validating, batch.in_progress, ... and the terminal ones). A change of the
   * counts alone is no move.
   */
  | 'WEBHOOK_EVENTS_ALL'
  | 2

/**
 * Which status changes an endpoint is sent.
 */
export type WebhookEvents__Output = typeof WebhookEvents[keyof typeof WebhookEvents]
