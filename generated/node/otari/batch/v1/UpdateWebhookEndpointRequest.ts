// Original file: protos/otari/batch/v1/webhook_service.proto

import type { WebhookEndpoint as _otari_batch_v1_WebhookEndpoint, WebhookEndpoint__Output as _otari_batch_v1_WebhookEndpoint__Output } from '../../../otari/batch/v1/WebhookEndpoint';
import type { FieldMask as _google_protobuf_FieldMask, FieldMask__Output as _google_protobuf_FieldMask__Output } from '../../../google/protobuf/FieldMask';

/**
 * A change of an endpoint.
 */
export interface UpdateWebhookEndpointRequest {
  /**
   * The endpoint with its id, and the new values of the fields update_mask names.
   */
  'endpoint'?: (_otari_batch_v1_WebhookEndpoint | null);
  /**
   * Required: which of url, events, metadata_filter, description and enabled to set from `endpoint`.
   */
  'updateMask'?: (_google_protobuf_FieldMask | null);
}

/**
 * A change of an endpoint.
 */
export interface UpdateWebhookEndpointRequest__Output {
  /**
   * The endpoint with its id, and the new values of the fields update_mask names.
   */
  'endpoint': (_otari_batch_v1_WebhookEndpoint__Output | null);
  /**
   * Required: which of url, events, metadata_filter, description and enabled to set from `endpoint`.
   */
  'updateMask': (_google_protobuf_FieldMask__Output | null);
}
