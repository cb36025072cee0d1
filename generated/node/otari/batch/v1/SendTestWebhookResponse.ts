// Original file: protos/otari/batch/v1/webhook_service.proto


/**
 * How the test went.
 */
export interface SendTestWebhookResponse {
  /**
   * The webhook-id the test was sent with.
   */
  'webhookId'?: (string);
  /**
   * The receiver's HTTP status; 0 when none came (`error` says why: refused, timed out, not allowed).
   */
  'statusCode'?: (number);
  /**
   * Why it was not delivered; empty on a 2xx.
   */
  'error'?: (string);
  /**
   * True on a 2xx.
   */
  'delivered'?: (boolean);
}

/**
 * How the test went.
 */
export interface SendTestWebhookResponse__Output {
  /**
   * The webhook-id the test was sent with.
   */
  'webhookId': (string);
  /**
   * The receiver's HTTP status; 0 when none came (`error` says why: refused, timed out, not allowed).
   */
  'statusCode': (number);
  /**
   * Why it was not delivered; empty on a 2xx.
   */
  'error': (string);
  /**
   * True on a 2xx.
   */
  'delivered': (boolean);
}
