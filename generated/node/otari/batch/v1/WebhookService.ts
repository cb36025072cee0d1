// Original file: protos/otari/batch/v1/webhook_service.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { CreateWebhookEndpointRequest as _otari_batch_v1_CreateWebhookEndpointRequest, CreateWebhookEndpointRequest__Output as _otari_batch_v1_CreateWebhookEndpointRequest__Output } from '../../../otari/batch/v1/CreateWebhookEndpointRequest';
import type { CreateWebhookEndpointResponse as _otari_batch_v1_CreateWebhookEndpointResponse, CreateWebhookEndpointResponse__Output as _otari_batch_v1_CreateWebhookEndpointResponse__Output } from '../../../otari/batch/v1/CreateWebhookEndpointResponse';
import type { DeleteWebhookEndpointRequest as _otari_batch_v1_DeleteWebhookEndpointRequest, DeleteWebhookEndpointRequest__Output as _otari_batch_v1_DeleteWebhookEndpointRequest__Output } from '../../../otari/batch/v1/DeleteWebhookEndpointRequest';
import type { DeleteWebhookEndpointResponse as _otari_batch_v1_DeleteWebhookEndpointResponse, DeleteWebhookEndpointResponse__Output as _otari_batch_v1_DeleteWebhookEndpointResponse__Output } from '../../../otari/batch/v1/DeleteWebhookEndpointResponse';
import type { GetWebhookEndpointRequest as _otari_batch_v1_GetWebhookEndpointRequest, GetWebhookEndpointRequest__Output as _otari_batch_v1_GetWebhookEndpointRequest__Output } from '../../../otari/batch/v1/GetWebhookEndpointRequest';
import type { GetWebhookEndpointResponse as _otari_batch_v1_GetWebhookEndpointResponse, GetWebhookEndpointResponse__Output as _otari_batch_v1_GetWebhookEndpointResponse__Output } from '../../../otari/batch/v1/GetWebhookEndpointResponse';
import type { ListWebhookDeliveriesRequest as _otari_batch_v1_ListWebhookDeliveriesRequest, ListWebhookDeliveriesRequest__Output as _otari_batch_v1_ListWebhookDeliveriesRequest__Output } from '../../../otari/batch/v1/ListWebhookDeliveriesRequest';
import type { ListWebhookDeliveriesResponse as _otari_batch_v1_ListWebhookDeliveriesResponse, ListWebhookDeliveriesResponse__Output as _otari_batch_v1_ListWebhookDeliveriesResponse__Output } from '../../../otari/batch/v1/ListWebhookDeliveriesResponse';
import type { ListWebhookEndpointsRequest as _otari_batch_v1_ListWebhookEndpointsRequest, ListWebhookEndpointsRequest__Output as _otari_batch_v1_ListWebhookEndpointsRequest__Output } from '../../../otari/batch/v1/ListWebhookEndpointsRequest';
import type { ListWebhookEndpointsResponse as _otari_batch_v1_ListWebhookEndpointsResponse, ListWebhookEndpointsResponse__Output as _otari_batch_v1_ListWebhookEndpointsResponse__Output } from '../../../otari/batch/v1/ListWebhookEndpointsResponse';
import type { RotateWebhookSecretRequest as _otari_batch_v1_RotateWebhookSecretRequest, RotateWebhookSecretRequest__Output as _otari_batch_v1_RotateWebhookSecretRequest__Output } from '../../../otari/batch/v1/RotateWebhookSecretRequest';
import type { RotateWebhookSecretResponse as _otari_batch_v1_RotateWebhookSecretResponse, RotateWebhookSecretResponse__Output as _otari_batch_v1_RotateWebhookSecretResponse__Output } from '../../../otari/batch/v1/RotateWebhookSecretResponse';
import type { SendTestWebhookRequest as _otari_batch_v1_SendTestWebhookRequest, SendTestWebhookRequest__Output as _otari_batch_v1_SendTestWebhookRequest__Output } from '../../../otari/batch/v1/SendTestWebhookRequest';
import type { SendTestWebhookResponse as _otari_batch_v1_SendTestWebhookResponse, SendTestWebhookResponse__Output as _otari_batch_v1_SendTestWebhookResponse__Output } from '../../../otari/batch/v1/SendTestWebhookResponse';
import type { UpdateWebhookEndpointRequest as _otari_batch_v1_UpdateWebhookEndpointRequest, UpdateWebhookEndpointRequest__Output as _otari_batch_v1_UpdateWebhookEndpointRequest__Output } from '../../../otari/batch/v1/UpdateWebhookEndpointRequest';
import type { UpdateWebhookEndpointResponse as _otari_batch_v1_UpdateWebhookEndpointResponse, UpdateWebhookEndpointResponse__Output as _otari_batch_v1_UpdateWebhookEndpointResponse__Output } from '../../../otari/batch/v1/UpdateWebhookEndpointResponse';

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
export interface WebhookServiceClient extends grpc.Client {
  /**
   * Registers an endpoint. Its signing secret is in the response, and only there: keep it.
   */
  CreateWebhookEndpoint(argument: _otari_batch_v1_CreateWebhookEndpointRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_CreateWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  CreateWebhookEndpoint(argument: _otari_batch_v1_CreateWebhookEndpointRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_CreateWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  CreateWebhookEndpoint(argument: _otari_batch_v1_CreateWebhookEndpointRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_CreateWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  CreateWebhookEndpoint(argument: _otari_batch_v1_CreateWebhookEndpointRequest, callback: grpc.requestCallback<_otari_batch_v1_CreateWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Registers an endpoint. Its signing secret is in the response, and only there: keep it.
   */
  createWebhookEndpoint(argument: _otari_batch_v1_CreateWebhookEndpointRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_CreateWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  createWebhookEndpoint(argument: _otari_batch_v1_CreateWebhookEndpointRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_CreateWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  createWebhookEndpoint(argument: _otari_batch_v1_CreateWebhookEndpointRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_CreateWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  createWebhookEndpoint(argument: _otari_batch_v1_CreateWebhookEndpointRequest, callback: grpc.requestCallback<_otari_batch_v1_CreateWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Deletes an endpoint and the deliveries it had pending.
   */
  DeleteWebhookEndpoint(argument: _otari_batch_v1_DeleteWebhookEndpointRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_DeleteWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  DeleteWebhookEndpoint(argument: _otari_batch_v1_DeleteWebhookEndpointRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_DeleteWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  DeleteWebhookEndpoint(argument: _otari_batch_v1_DeleteWebhookEndpointRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_DeleteWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  DeleteWebhookEndpoint(argument: _otari_batch_v1_DeleteWebhookEndpointRequest, callback: grpc.requestCallback<_otari_batch_v1_DeleteWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Deletes an endpoint and the deliveries it had pending.
   */
  deleteWebhookEndpoint(argument: _otari_batch_v1_DeleteWebhookEndpointRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_DeleteWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  deleteWebhookEndpoint(argument: _otari_batch_v1_DeleteWebhookEndpointRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_DeleteWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  deleteWebhookEndpoint(argument: _otari_batch_v1_DeleteWebhookEndpointRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_DeleteWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  deleteWebhookEndpoint(argument: _otari_batch_v1_DeleteWebhookEndpointRequest, callback: grpc.requestCallback<_otari_batch_v1_DeleteWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Gets one of your endpoints.
   */
  GetWebhookEndpoint(argument: _otari_batch_v1_GetWebhookEndpointRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_GetWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  GetWebhookEndpoint(argument: _otari_batch_v1_GetWebhookEndpointRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_GetWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  GetWebhookEndpoint(argument: _otari_batch_v1_GetWebhookEndpointRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_GetWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  GetWebhookEndpoint(argument: _otari_batch_v1_GetWebhookEndpointRequest, callback: grpc.requestCallback<_otari_batch_v1_GetWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Gets one of your endpoints.
   */
  getWebhookEndpoint(argument: _otari_batch_v1_GetWebhookEndpointRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_GetWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  getWebhookEndpoint(argument: _otari_batch_v1_GetWebhookEndpointRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_GetWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  getWebhookEndpoint(argument: _otari_batch_v1_GetWebhookEndpointRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_GetWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  getWebhookEndpoint(argument: _otari_batch_v1_GetWebhookEndpointRequest, callback: grpc.requestCallback<_otari_batch_v1_GetWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Lists an endpoint's recent deliveries, newest first: what was, is being or will be sent, and how it went.
   */
  ListWebhookDeliveries(argument: _otari_batch_v1_ListWebhookDeliveriesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_ListWebhookDeliveriesResponse__Output>): grpc.ClientUnaryCall;
  ListWebhookDeliveries(argument: _otari_batch_v1_ListWebhookDeliveriesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_ListWebhookDeliveriesResponse__Output>): grpc.ClientUnaryCall;
  ListWebhookDeliveries(argument: _otari_batch_v1_ListWebhookDeliveriesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_ListWebhookDeliveriesResponse__Output>): grpc.ClientUnaryCall;
  ListWebhookDeliveries(argument: _otari_batch_v1_ListWebhookDeliveriesRequest, callback: grpc.requestCallback<_otari_batch_v1_ListWebhookDeliveriesResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Lists an endpoint's recent deliveries, newest first: what was, is being or will be sent, and how it went.
   */
  listWebhookDeliveries(argument: _otari_batch_v1_ListWebhookDeliveriesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_ListWebhookDeliveriesResponse__Output>): grpc.ClientUnaryCall;
  listWebhookDeliveries(argument: _otari_batch_v1_ListWebhookDeliveriesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_ListWebhookDeliveriesResponse__Output>): grpc.ClientUnaryCall;
  listWebhookDeliveries(argument: _otari_batch_v1_ListWebhookDeliveriesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_ListWebhookDeliveriesResponse__Output>): grpc.ClientUnaryCall;
  listWebhookDeliveries(argument: _otari_batch_v1_ListWebhookDeliveriesRequest, callback: grpc.requestCallback<_otari_batch_v1_ListWebhookDeliveriesResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Lists your endpoints, oldest first.
   */
  ListWebhookEndpoints(argument: _otari_batch_v1_ListWebhookEndpointsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_ListWebhookEndpointsResponse__Output>): grpc.ClientUnaryCall;
  ListWebhookEndpoints(argument: _otari_batch_v1_ListWebhookEndpointsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_ListWebhookEndpointsResponse__Output>): grpc.ClientUnaryCall;
  ListWebhookEndpoints(argument: _otari_batch_v1_ListWebhookEndpointsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_ListWebhookEndpointsResponse__Output>): grpc.ClientUnaryCall;
  ListWebhookEndpoints(argument: _otari_batch_v1_ListWebhookEndpointsRequest, callback: grpc.requestCallback<_otari_batch_v1_ListWebhookEndpointsResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Lists your endpoints, oldest first.
   */
  listWebhookEndpoints(argument: _otari_batch_v1_ListWebhookEndpointsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_ListWebhookEndpointsResponse__Output>): grpc.ClientUnaryCall;
  listWebhookEndpoints(argument: _otari_batch_v1_ListWebhookEndpointsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_ListWebhookEndpointsResponse__Output>): grpc.ClientUnaryCall;
  listWebhookEndpoints(argument: _otari_batch_v1_ListWebhookEndpointsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_ListWebhookEndpointsResponse__Output>): grpc.ClientUnaryCall;
  listWebhookEndpoints(argument: _otari_batch_v1_ListWebhookEndpointsRequest, callback: grpc.requestCallback<_otari_batch_v1_ListWebhookEndpointsResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Makes a new signing secret, returned here only. The old one keeps signing too (two signatures on each
   * delivery) for `overlap`, so receivers can switch without losing a delivery.
   */
  RotateWebhookSecret(argument: _otari_batch_v1_RotateWebhookSecretRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_RotateWebhookSecretResponse__Output>): grpc.ClientUnaryCall;
  RotateWebhookSecret(argument: _otari_batch_v1_RotateWebhookSecretRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_RotateWebhookSecretResponse__Output>): grpc.ClientUnaryCall;
  RotateWebhookSecret(argument: _otari_batch_v1_RotateWebhookSecretRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_RotateWebhookSecretResponse__Output>): grpc.ClientUnaryCall;
  RotateWebhookSecret(argument: _otari_batch_v1_RotateWebhookSecretRequest, callback: grpc.requestCallback<_otari_batch_v1_RotateWebhookSecretResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Makes a new signing secret, returned here only. The old one keeps signing too (two signatures on each
   * delivery) for `overlap`, so receivers can switch without losing a delivery.
   */
  rotateWebhookSecret(argument: _otari_batch_v1_RotateWebhookSecretRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_RotateWebhookSecretResponse__Output>): grpc.ClientUnaryCall;
  rotateWebhookSecret(argument: _otari_batch_v1_RotateWebhookSecretRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_RotateWebhookSecretResponse__Output>): grpc.ClientUnaryCall;
  rotateWebhookSecret(argument: _otari_batch_v1_RotateWebhookSecretRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_RotateWebhookSecretResponse__Output>): grpc.ClientUnaryCall;
  rotateWebhookSecret(argument: _otari_batch_v1_RotateWebhookSecretRequest, callback: grpc.requestCallback<_otari_batch_v1_RotateWebhookSecretResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Sends a signed `webhook.test` event to the endpoint now, once, and says how the receiver answered. Not kept,
   * not retried; sent to a disabled endpoint too.
   */
  SendTestWebhook(argument: _otari_batch_v1_SendTestWebhookRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_SendTestWebhookResponse__Output>): grpc.ClientUnaryCall;
  SendTestWebhook(argument: _otari_batch_v1_SendTestWebhookRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_SendTestWebhookResponse__Output>): grpc.ClientUnaryCall;
  SendTestWebhook(argument: _otari_batch_v1_SendTestWebhookRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_SendTestWebhookResponse__Output>): grpc.ClientUnaryCall;
  SendTestWebhook(argument: _otari_batch_v1_SendTestWebhookRequest, callback: grpc.requestCallback<_otari_batch_v1_SendTestWebhookResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Sends a signed `webhook.test` event to the endpoint now, once, and says how the receiver answered. Not kept,
   * not retried; sent to a disabled endpoint too.
   */
  sendTestWebhook(argument: _otari_batch_v1_SendTestWebhookRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_SendTestWebhookResponse__Output>): grpc.ClientUnaryCall;
  sendTestWebhook(argument: _otari_batch_v1_SendTestWebhookRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_SendTestWebhookResponse__Output>): grpc.ClientUnaryCall;
  sendTestWebhook(argument: _otari_batch_v1_SendTestWebhookRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_SendTestWebhookResponse__Output>): grpc.ClientUnaryCall;
  sendTestWebhook(argument: _otari_batch_v1_SendTestWebhookRequest, callback: grpc.requestCallback<_otari_batch_v1_SendTestWebhookResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Changes an endpoint: the fields `update_mask` names. Disabling holds its deliveries back (they are kept for the
   * retry window, then dropped); enabling sends what waited.
   */
  UpdateWebhookEndpoint(argument: _otari_batch_v1_UpdateWebhookEndpointRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_UpdateWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  UpdateWebhookEndpoint(argument: _otari_batch_v1_UpdateWebhookEndpointRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_UpdateWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  UpdateWebhookEndpoint(argument: _otari_batch_v1_UpdateWebhookEndpointRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_UpdateWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  UpdateWebhookEndpoint(argument: _otari_batch_v1_UpdateWebhookEndpointRequest, callback: grpc.requestCallback<_otari_batch_v1_UpdateWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Changes an endpoint: the fields `update_mask` names. Disabling holds its deliveries back (they are kept for the
   * retry window, then dropped); enabling sends what waited.
   */
  updateWebhookEndpoint(argument: _otari_batch_v1_UpdateWebhookEndpointRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_UpdateWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  updateWebhookEndpoint(argument: _otari_batch_v1_UpdateWebhookEndpointRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_UpdateWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  updateWebhookEndpoint(argument: _otari_batch_v1_UpdateWebhookEndpointRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_UpdateWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  updateWebhookEndpoint(argument: _otari_batch_v1_UpdateWebhookEndpointRequest, callback: grpc.requestCallback<_otari_batch_v1_UpdateWebhookEndpointResponse__Output>): grpc.ClientUnaryCall;
  
}

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
export interface WebhookServiceHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Registers an endpoint. Its signing secret is in the response, and only there: keep it.
   */
  CreateWebhookEndpoint: grpc.handleUnaryCall<_otari_batch_v1_CreateWebhookEndpointRequest__Output, _otari_batch_v1_CreateWebhookEndpointResponse>;
  
  /**
   * Deletes an endpoint and the deliveries it had pending.
   */
  DeleteWebhookEndpoint: grpc.handleUnaryCall<_otari_batch_v1_DeleteWebhookEndpointRequest__Output, _otari_batch_v1_DeleteWebhookEndpointResponse>;
  
  /**
   * Gets one of your endpoints.
   */
  GetWebhookEndpoint: grpc.handleUnaryCall<_otari_batch_v1_GetWebhookEndpointRequest__Output, _otari_batch_v1_GetWebhookEndpointResponse>;
  
  /**
   * Lists an endpoint's recent deliveries, newest first: what was, is being or will be sent, and how it went.
   */
  ListWebhookDeliveries: grpc.handleUnaryCall<_otari_batch_v1_ListWebhookDeliveriesRequest__Output, _otari_batch_v1_ListWebhookDeliveriesResponse>;
  
  /**
   * Lists your endpoints, oldest first.
   */
  ListWebhookEndpoints: grpc.handleUnaryCall<_otari_batch_v1_ListWebhookEndpointsRequest__Output, _otari_batch_v1_ListWebhookEndpointsResponse>;
  
  /**
   * Makes a new signing secret, returned here only. The old one keeps signing too (two signatures on each
   * delivery) for `overlap`, so receivers can switch without losing a delivery.
   */
  RotateWebhookSecret: grpc.handleUnaryCall<_otari_batch_v1_RotateWebhookSecretRequest__Output, _otari_batch_v1_RotateWebhookSecretResponse>;
  
  /**
   * Sends a signed `webhook.test` event to the endpoint now, once, and says how the receiver answered. Not kept,
   * not retried; sent to a disabled endpoint too.
   */
  SendTestWebhook: grpc.handleUnaryCall<_otari_batch_v1_SendTestWebhookRequest__Output, _otari_batch_v1_SendTestWebhookResponse>;
  
  /**
   * Changes an endpoint: the fields `update_mask` names. Disabling holds its deliveries back (they are kept for the
   * retry window, then dropped); enabling sends what waited.
   */
  UpdateWebhookEndpoint: grpc.handleUnaryCall<_otari_batch_v1_UpdateWebhookEndpointRequest__Output, _otari_batch_v1_UpdateWebhookEndpointResponse>;
  
}

export interface WebhookServiceDefinition extends grpc.ServiceDefinition {
  CreateWebhookEndpoint: MethodDefinition<_otari_batch_v1_CreateWebhookEndpointRequest, _otari_batch_v1_CreateWebhookEndpointResponse, _otari_batch_v1_CreateWebhookEndpointRequest__Output, _otari_batch_v1_CreateWebhookEndpointResponse__Output>
  DeleteWebhookEndpoint: MethodDefinition<_otari_batch_v1_DeleteWebhookEndpointRequest, _otari_batch_v1_DeleteWebhookEndpointResponse, _otari_batch_v1_DeleteWebhookEndpointRequest__Output, _otari_batch_v1_DeleteWebhookEndpointResponse__Output>
  GetWebhookEndpoint: MethodDefinition<_otari_batch_v1_GetWebhookEndpointRequest, _otari_batch_v1_GetWebhookEndpointResponse, _otari_batch_v1_GetWebhookEndpointRequest__Output, _otari_batch_v1_GetWebhookEndpointResponse__Output>
  ListWebhookDeliveries: MethodDefinition<_otari_batch_v1_ListWebhookDeliveriesRequest, _otari_batch_v1_ListWebhookDeliveriesResponse, _otari_batch_v1_ListWebhookDeliveriesRequest__Output, _otari_batch_v1_ListWebhookDeliveriesResponse__Output>
  ListWebhookEndpoints: MethodDefinition<_otari_batch_v1_ListWebhookEndpointsRequest, _otari_batch_v1_ListWebhookEndpointsResponse, _otari_batch_v1_ListWebhookEndpointsRequest__Output, _otari_batch_v1_ListWebhookEndpointsResponse__Output>
  RotateWebhookSecret: MethodDefinition<_otari_batch_v1_RotateWebhookSecretRequest, _otari_batch_v1_RotateWebhookSecretResponse, _otari_batch_v1_RotateWebhookSecretRequest__Output, _otari_batch_v1_RotateWebhookSecretResponse__Output>
  SendTestWebhook: MethodDefinition<_otari_batch_v1_SendTestWebhookRequest, _otari_batch_v1_SendTestWebhookResponse, _otari_batch_v1_SendTestWebhookRequest__Output, _otari_batch_v1_SendTestWebhookResponse__Output>
  UpdateWebhookEndpoint: MethodDefinition<_otari_batch_v1_UpdateWebhookEndpointRequest, _otari_batch_v1_UpdateWebhookEndpointResponse, _otari_batch_v1_UpdateWebhookEndpointRequest__Output, _otari_batch_v1_UpdateWebhookEndpointResponse__Output>
}
