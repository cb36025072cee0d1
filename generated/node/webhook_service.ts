import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from './google/protobuf/Duration';
import type { FieldMask as _google_protobuf_FieldMask, FieldMask__Output as _google_protobuf_FieldMask__Output } from './google/protobuf/FieldMask';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from './google/protobuf/Timestamp';
import type { CreateWebhookEndpointRequest as _otari_batch_v1_CreateWebhookEndpointRequest, CreateWebhookEndpointRequest__Output as _otari_batch_v1_CreateWebhookEndpointRequest__Output } from './otari/batch/v1/CreateWebhookEndpointRequest';
import type { CreateWebhookEndpointResponse as _otari_batch_v1_CreateWebhookEndpointResponse, CreateWebhookEndpointResponse__Output as _otari_batch_v1_CreateWebhookEndpointResponse__Output } from './otari/batch/v1/CreateWebhookEndpointResponse';
import type { DeleteWebhookEndpointRequest as _otari_batch_v1_DeleteWebhookEndpointRequest, DeleteWebhookEndpointRequest__Output as _otari_batch_v1_DeleteWebhookEndpointRequest__Output } from './otari/batch/v1/DeleteWebhookEndpointRequest';
import type { DeleteWebhookEndpointResponse as _otari_batch_v1_DeleteWebhookEndpointResponse, DeleteWebhookEndpointResponse__Output as _otari_batch_v1_DeleteWebhookEndpointResponse__Output } from './otari/batch/v1/DeleteWebhookEndpointResponse';
import type { GetWebhookEndpointRequest as _otari_batch_v1_GetWebhookEndpointRequest, GetWebhookEndpointRequest__Output as _otari_batch_v1_GetWebhookEndpointRequest__Output } from './otari/batch/v1/GetWebhookEndpointRequest';
import type { GetWebhookEndpointResponse as _otari_batch_v1_GetWebhookEndpointResponse, GetWebhookEndpointResponse__Output as _otari_batch_v1_GetWebhookEndpointResponse__Output } from './otari/batch/v1/GetWebhookEndpointResponse';
import type { ListWebhookDeliveriesRequest as _otari_batch_v1_ListWebhookDeliveriesRequest, ListWebhookDeliveriesRequest__Output as _otari_batch_v1_ListWebhookDeliveriesRequest__Output } from './otari/batch/v1/ListWebhookDeliveriesRequest';
import type { ListWebhookDeliveriesResponse as _otari_batch_v1_ListWebhookDeliveriesResponse, ListWebhookDeliveriesResponse__Output as _otari_batch_v1_ListWebhookDeliveriesResponse__Output } from './otari/batch/v1/ListWebhookDeliveriesResponse';
import type { ListWebhookEndpointsRequest as _otari_batch_v1_ListWebhookEndpointsRequest, ListWebhookEndpointsRequest__Output as _otari_batch_v1_ListWebhookEndpointsRequest__Output } from './otari/batch/v1/ListWebhookEndpointsRequest';
import type { ListWebhookEndpointsResponse as _otari_batch_v1_ListWebhookEndpointsResponse, ListWebhookEndpointsResponse__Output as _otari_batch_v1_ListWebhookEndpointsResponse__Output } from './otari/batch/v1/ListWebhookEndpointsResponse';
import type { RotateWebhookSecretRequest as _otari_batch_v1_RotateWebhookSecretRequest, RotateWebhookSecretRequest__Output as _otari_batch_v1_RotateWebhookSecretRequest__Output } from './otari/batch/v1/RotateWebhookSecretRequest';
import type { RotateWebhookSecretResponse as _otari_batch_v1_RotateWebhookSecretResponse, RotateWebhookSecretResponse__Output as _otari_batch_v1_RotateWebhookSecretResponse__Output } from './otari/batch/v1/RotateWebhookSecretResponse';
import type { SendTestWebhookRequest as _otari_batch_v1_SendTestWebhookRequest, SendTestWebhookRequest__Output as _otari_batch_v1_SendTestWebhookRequest__Output } from './otari/batch/v1/SendTestWebhookRequest';
import type { SendTestWebhookResponse as _otari_batch_v1_SendTestWebhookResponse, SendTestWebhookResponse__Output as _otari_batch_v1_SendTestWebhookResponse__Output } from './otari/batch/v1/SendTestWebhookResponse';
import type { UpdateWebhookEndpointRequest as _otari_batch_v1_UpdateWebhookEndpointRequest, UpdateWebhookEndpointRequest__Output as _otari_batch_v1_UpdateWebhookEndpointRequest__Output } from './otari/batch/v1/UpdateWebhookEndpointRequest';
import type { UpdateWebhookEndpointResponse as _otari_batch_v1_UpdateWebhookEndpointResponse, UpdateWebhookEndpointResponse__Output as _otari_batch_v1_UpdateWebhookEndpointResponse__Output } from './otari/batch/v1/UpdateWebhookEndpointResponse';
import type { WebhookDelivery as _otari_batch_v1_WebhookDelivery, WebhookDelivery__Output as _otari_batch_v1_WebhookDelivery__Output } from './otari/batch/v1/WebhookDelivery';
import type { WebhookEndpoint as _otari_batch_v1_WebhookEndpoint, WebhookEndpoint__Output as _otari_batch_v1_WebhookEndpoint__Output } from './otari/batch/v1/WebhookEndpoint';
import type { WebhookServiceClient as _otari_batch_v1_WebhookServiceClient, WebhookServiceDefinition as _otari_batch_v1_WebhookServiceDefinition } from './otari/batch/v1/WebhookService';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  google: {
    protobuf: {
      Duration: MessageTypeDefinition<_google_protobuf_Duration, _google_protobuf_Duration__Output>
      FieldMask: MessageTypeDefinition<_google_protobuf_FieldMask, _google_protobuf_FieldMask__Output>
      Timestamp: MessageTypeDefinition<_google_protobuf_Timestamp, _google_protobuf_Timestamp__Output>
    }
  }
  otari: {
    batch: {
      v1: {
        CreateWebhookEndpointRequest: MessageTypeDefinition<_otari_batch_v1_CreateWebhookEndpointRequest, _otari_batch_v1_CreateWebhookEndpointRequest__Output>
        CreateWebhookEndpointResponse: MessageTypeDefinition<_otari_batch_v1_CreateWebhookEndpointResponse, _otari_batch_v1_CreateWebhookEndpointResponse__Output>
        DeleteWebhookEndpointRequest: MessageTypeDefinition<_otari_batch_v1_DeleteWebhookEndpointRequest, _otari_batch_v1_DeleteWebhookEndpointRequest__Output>
        DeleteWebhookEndpointResponse: MessageTypeDefinition<_otari_batch_v1_DeleteWebhookEndpointResponse, _otari_batch_v1_DeleteWebhookEndpointResponse__Output>
        GetWebhookEndpointRequest: MessageTypeDefinition<_otari_batch_v1_GetWebhookEndpointRequest, _otari_batch_v1_GetWebhookEndpointRequest__Output>
        GetWebhookEndpointResponse: MessageTypeDefinition<_otari_batch_v1_GetWebhookEndpointResponse, _otari_batch_v1_GetWebhookEndpointResponse__Output>
        ListWebhookDeliveriesRequest: MessageTypeDefinition<_otari_batch_v1_ListWebhookDeliveriesRequest, _otari_batch_v1_ListWebhookDeliveriesRequest__Output>
        ListWebhookDeliveriesResponse: MessageTypeDefinition<_otari_batch_v1_ListWebhookDeliveriesResponse, _otari_batch_v1_ListWebhookDeliveriesResponse__Output>
        ListWebhookEndpointsRequest: MessageTypeDefinition<_otari_batch_v1_ListWebhookEndpointsRequest, _otari_batch_v1_ListWebhookEndpointsRequest__Output>
        ListWebhookEndpointsResponse: MessageTypeDefinition<_otari_batch_v1_ListWebhookEndpointsResponse, _otari_batch_v1_ListWebhookEndpointsResponse__Output>
        RotateWebhookSecretRequest: MessageTypeDefinition<_otari_batch_v1_RotateWebhookSecretRequest, _otari_batch_v1_RotateWebhookSecretRequest__Output>
        RotateWebhookSecretResponse: MessageTypeDefinition<_otari_batch_v1_RotateWebhookSecretResponse, _otari_batch_v1_RotateWebhookSecretResponse__Output>
        SendTestWebhookRequest: MessageTypeDefinition<_otari_batch_v1_SendTestWebhookRequest, _otari_batch_v1_SendTestWebhookRequest__Output>
        SendTestWebhookResponse: MessageTypeDefinition<_otari_batch_v1_SendTestWebhookResponse, _otari_batch_v1_SendTestWebhookResponse__Output>
        UpdateWebhookEndpointRequest: MessageTypeDefinition<_otari_batch_v1_UpdateWebhookEndpointRequest, _otari_batch_v1_UpdateWebhookEndpointRequest__Output>
        UpdateWebhookEndpointResponse: MessageTypeDefinition<_otari_batch_v1_UpdateWebhookEndpointResponse, _otari_batch_v1_UpdateWebhookEndpointResponse__Output>
        WebhookDelivery: MessageTypeDefinition<_otari_batch_v1_WebhookDelivery, _otari_batch_v1_WebhookDelivery__Output>
        WebhookDeliveryState: EnumTypeDefinition
        WebhookEndpoint: MessageTypeDefinition<_otari_batch_v1_WebhookEndpoint, _otari_batch_v1_WebhookEndpoint__Output>
        WebhookEvents: EnumTypeDefinition
        /**
         * Register, inspect and manage the endpoints your batches' status changes are delivered to.
         * 
         * Authentication as BatchService. An endpoint is its caller's: another key cannot see, change or receive for it.
         * Registering an endpoint delegates your key to it: the service keeps it encrypted, and uses it only to read your
         * live batches while no one watches them (one gateway read per live batch per WATCH_POLL_MAX, shared with every
         * watch and every other endpoint of yours), so that their changes are delivered with nobody connected. The
         * gateway's first 401 to it disables your endpoints and forgets the key (disabled_reason and the pending deliveries
         * say so); an update of an endpoint, with the key taken again, delegates it anew. Deleting an endpoint forgets the
         * key it holds. A key the gateway refuses sees, changes and registers nothing here (UNAUTHENTICATED).
         * 
         * A delivery is an HTTP POST of a JSON body `{"type": "batch.completed", "timestamp": ..., "data": BatchEvent}`
         * (`data` is BatchEvent in the contract's JSON mapping: the batch, the status before, and a resume_token for
         * WatchBatch), with the headers `webhook-id`, `webhook-timestamp` and `webhook-signature`. Verify it with any
         * Standard Webhooks library and the endpoint's signing secret. Delivered at least once: a retry has the same
         * webhook-id. Per endpoint and batch, in the order of the changes; a pending event that a newer change of the same
         * batch makes stale is not sent (the terminal one never is).
         */
        WebhookService: SubtypeConstructor<typeof grpc.Client, _otari_batch_v1_WebhookServiceClient> & { service: _otari_batch_v1_WebhookServiceDefinition }
      }
    }
  }
}

