// Original file: protos/otari/batch/v1/webhook_service.proto

import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from '../../../google/protobuf/Duration';

/**
 * Which endpoint's secret to rotate.
 */
export interface RotateWebhookSecretRequest {
  /**
   * Required.
   */
  'endpointId'?: (string);
  /**
   * How long the previous secret still signs as well: 0 to 7 days; unset means 24 hours. Zero: it stops now.
   */
  'overlap'?: (_google_protobuf_Duration | null);
}

/**
 * Which endpoint's secret to rotate.
 */
export interface RotateWebhookSecretRequest__Output {
  /**
   * Required.
   */
  'endpointId': (string);
  /**
   * How long the previous secret still signs as well: 0 to 7 days; unset means 24 hours. Zero: it stops now.
   */
  'overlap': (_google_protobuf_Duration__Output | null);
}
