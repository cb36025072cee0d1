// Original file: protos/otari/batch/v1/batch_service.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { CancelBatchRequest as _otari_batch_v1_CancelBatchRequest, CancelBatchRequest__Output as _otari_batch_v1_CancelBatchRequest__Output } from '../../../otari/batch/v1/CancelBatchRequest';
import type { CancelBatchResponse as _otari_batch_v1_CancelBatchResponse, CancelBatchResponse__Output as _otari_batch_v1_CancelBatchResponse__Output } from '../../../otari/batch/v1/CancelBatchResponse';
import type { CreateBatchRequest as _otari_batch_v1_CreateBatchRequest, CreateBatchRequest__Output as _otari_batch_v1_CreateBatchRequest__Output } from '../../../otari/batch/v1/CreateBatchRequest';
import type { CreateBatchResponse as _otari_batch_v1_CreateBatchResponse, CreateBatchResponse__Output as _otari_batch_v1_CreateBatchResponse__Output } from '../../../otari/batch/v1/CreateBatchResponse';
import type { GetBatchRequest as _otari_batch_v1_GetBatchRequest, GetBatchRequest__Output as _otari_batch_v1_GetBatchRequest__Output } from '../../../otari/batch/v1/GetBatchRequest';
import type { GetBatchResponse as _otari_batch_v1_GetBatchResponse, GetBatchResponse__Output as _otari_batch_v1_GetBatchResponse__Output } from '../../../otari/batch/v1/GetBatchResponse';
import type { ListBatchesRequest as _otari_batch_v1_ListBatchesRequest, ListBatchesRequest__Output as _otari_batch_v1_ListBatchesRequest__Output } from '../../../otari/batch/v1/ListBatchesRequest';
import type { ListBatchesResponse as _otari_batch_v1_ListBatchesResponse, ListBatchesResponse__Output as _otari_batch_v1_ListBatchesResponse__Output } from '../../../otari/batch/v1/ListBatchesResponse';
import type { StreamResultsRequest as _otari_batch_v1_StreamResultsRequest, StreamResultsRequest__Output as _otari_batch_v1_StreamResultsRequest__Output } from '../../../otari/batch/v1/StreamResultsRequest';
import type { StreamResultsResponse as _otari_batch_v1_StreamResultsResponse, StreamResultsResponse__Output as _otari_batch_v1_StreamResultsResponse__Output } from '../../../otari/batch/v1/StreamResultsResponse';
import type { UploadBatchRequest as _otari_batch_v1_UploadBatchRequest, UploadBatchRequest__Output as _otari_batch_v1_UploadBatchRequest__Output } from '../../../otari/batch/v1/UploadBatchRequest';
import type { UploadBatchResponse as _otari_batch_v1_UploadBatchResponse, UploadBatchResponse__Output as _otari_batch_v1_UploadBatchResponse__Output } from '../../../otari/batch/v1/UploadBatchResponse';
import type { WaitBatchRequest as _otari_batch_v1_WaitBatchRequest, WaitBatchRequest__Output as _otari_batch_v1_WaitBatchRequest__Output } from '../../../otari/batch/v1/WaitBatchRequest';
import type { WaitBatchResponse as _otari_batch_v1_WaitBatchResponse, WaitBatchResponse__Output as _otari_batch_v1_WaitBatchResponse__Output } from '../../../otari/batch/v1/WaitBatchResponse';
import type { WatchBatchRequest as _otari_batch_v1_WatchBatchRequest, WatchBatchRequest__Output as _otari_batch_v1_WatchBatchRequest__Output } from '../../../otari/batch/v1/WatchBatchRequest';
import type { WatchBatchResponse as _otari_batch_v1_WatchBatchResponse, WatchBatchResponse__Output as _otari_batch_v1_WatchBatchResponse__Output } from '../../../otari/batch/v1/WatchBatchResponse';
import type { WatchBatchesRequest as _otari_batch_v1_WatchBatchesRequest, WatchBatchesRequest__Output as _otari_batch_v1_WatchBatchesRequest__Output } from '../../../otari/batch/v1/WatchBatchesRequest';
import type { WatchBatchesResponse as _otari_batch_v1_WatchBatchesResponse, WatchBatchesResponse__Output as _otari_batch_v1_WatchBatchesResponse__Output } from '../../../otari/batch/v1/WatchBatchesResponse';

/**
 * Create, inspect, list and cancel batches of chat-completion requests, and stream their results.
 * 
 * Authentication: send your otari API key as call metadata, `authorization: Bearer <key>`, `otari-key: <key>`
 * or `x-api-key: <key>`. It is forwarded to the gateway on every call and stored only for work asked for in your
 * absence (CreateBatchRequest.max_attempts: kept encrypted for that batch alone, until it ends).
 * 
 * Errors carry a canonical status code and a google.rpc.ErrorInfo (reason, domain "batch.otari.mozilla.ai",
 * metadata); bad input also carries google.rpc.BadRequest field violations, and errors a retry can cure carry
 * google.rpc.RetryInfo.
 */
export interface BatchServiceClient extends grpc.Client {
  /**
   * Asks for a batch to be cancelled. The batch goes through CANCELLING to CANCELLED.
   */
  CancelBatch(argument: _otari_batch_v1_CancelBatchRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_CancelBatchResponse__Output>): grpc.ClientUnaryCall;
  CancelBatch(argument: _otari_batch_v1_CancelBatchRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_CancelBatchResponse__Output>): grpc.ClientUnaryCall;
  CancelBatch(argument: _otari_batch_v1_CancelBatchRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_CancelBatchResponse__Output>): grpc.ClientUnaryCall;
  CancelBatch(argument: _otari_batch_v1_CancelBatchRequest, callback: grpc.requestCallback<_otari_batch_v1_CancelBatchResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Asks for a batch to be cancelled. The batch goes through CANCELLING to CANCELLED.
   */
  cancelBatch(argument: _otari_batch_v1_CancelBatchRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_CancelBatchResponse__Output>): grpc.ClientUnaryCall;
  cancelBatch(argument: _otari_batch_v1_CancelBatchRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_CancelBatchResponse__Output>): grpc.ClientUnaryCall;
  cancelBatch(argument: _otari_batch_v1_CancelBatchRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_CancelBatchResponse__Output>): grpc.ClientUnaryCall;
  cancelBatch(argument: _otari_batch_v1_CancelBatchRequest, callback: grpc.requestCallback<_otari_batch_v1_CancelBatchResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Creates a batch. Validation happens here, before the gateway is called: a bad request costs nothing.
   */
  CreateBatch(argument: _otari_batch_v1_CreateBatchRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_CreateBatchResponse__Output>): grpc.ClientUnaryCall;
  CreateBatch(argument: _otari_batch_v1_CreateBatchRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_CreateBatchResponse__Output>): grpc.ClientUnaryCall;
  CreateBatch(argument: _otari_batch_v1_CreateBatchRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_CreateBatchResponse__Output>): grpc.ClientUnaryCall;
  CreateBatch(argument: _otari_batch_v1_CreateBatchRequest, callback: grpc.requestCallback<_otari_batch_v1_CreateBatchResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Creates a batch. Validation happens here, before the gateway is called: a bad request costs nothing.
   */
  createBatch(argument: _otari_batch_v1_CreateBatchRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_CreateBatchResponse__Output>): grpc.ClientUnaryCall;
  createBatch(argument: _otari_batch_v1_CreateBatchRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_CreateBatchResponse__Output>): grpc.ClientUnaryCall;
  createBatch(argument: _otari_batch_v1_CreateBatchRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_CreateBatchResponse__Output>): grpc.ClientUnaryCall;
  createBatch(argument: _otari_batch_v1_CreateBatchRequest, callback: grpc.requestCallback<_otari_batch_v1_CreateBatchResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Gets the current state of a batch.
   */
  GetBatch(argument: _otari_batch_v1_GetBatchRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_GetBatchResponse__Output>): grpc.ClientUnaryCall;
  GetBatch(argument: _otari_batch_v1_GetBatchRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_GetBatchResponse__Output>): grpc.ClientUnaryCall;
  GetBatch(argument: _otari_batch_v1_GetBatchRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_GetBatchResponse__Output>): grpc.ClientUnaryCall;
  GetBatch(argument: _otari_batch_v1_GetBatchRequest, callback: grpc.requestCallback<_otari_batch_v1_GetBatchResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Gets the current state of a batch.
   */
  getBatch(argument: _otari_batch_v1_GetBatchRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_GetBatchResponse__Output>): grpc.ClientUnaryCall;
  getBatch(argument: _otari_batch_v1_GetBatchRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_GetBatchResponse__Output>): grpc.ClientUnaryCall;
  getBatch(argument: _otari_batch_v1_GetBatchRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_GetBatchResponse__Output>): grpc.ClientUnaryCall;
  getBatch(argument: _otari_batch_v1_GetBatchRequest, callback: grpc.requestCallback<_otari_batch_v1_GetBatchResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Lists the caller's batches, newest first: every batch this service has shown the caller (so none is lost to
   * the gateway's owner-filtered pages, which carry no cursor), merged with the gateway's newest page of each
   * provider asked about, to discover batches made elsewhere. `incomplete_providers` says when that failed.
   */
  ListBatches(argument: _otari_batch_v1_ListBatchesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_ListBatchesResponse__Output>): grpc.ClientUnaryCall;
  ListBatches(argument: _otari_batch_v1_ListBatchesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_ListBatchesResponse__Output>): grpc.ClientUnaryCall;
  ListBatches(argument: _otari_batch_v1_ListBatchesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_ListBatchesResponse__Output>): grpc.ClientUnaryCall;
  ListBatches(argument: _otari_batch_v1_ListBatchesRequest, callback: grpc.requestCallback<_otari_batch_v1_ListBatchesResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Lists the caller's batches, newest first: every batch this service has shown the caller (so none is lost to
   * the gateway's owner-filtered pages, which carry no cursor), merged with the gateway's newest page of each
   * provider asked about, to discover batches made elsewhere. `incomplete_providers` says when that failed.
   */
  listBatches(argument: _otari_batch_v1_ListBatchesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_ListBatchesResponse__Output>): grpc.ClientUnaryCall;
  listBatches(argument: _otari_batch_v1_ListBatchesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_ListBatchesResponse__Output>): grpc.ClientUnaryCall;
  listBatches(argument: _otari_batch_v1_ListBatchesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_ListBatchesResponse__Output>): grpc.ClientUnaryCall;
  listBatches(argument: _otari_batch_v1_ListBatchesRequest, callback: grpc.requestCallback<_otari_batch_v1_ListBatchesResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Streams the results of a completed batch in the gateway's order, in chunks of consecutive results (each
   * message at most about 256 KiB, one result if a single result is larger). A batch that is not completed
   * gets FAILED_PRECONDITION with its status in ErrorInfo.metadata["status"], unless `wait` is set. A batch of
   * several parts (Batch.parts) has results once it ended, however it ended: one per request, in the order the
   * requests were sent, an error result for each request its part has none for (its code says why:
   * batch_cancelled, batch_expired, batch_failed, result_missing).
   * The first stream of a batch flows while the gateway's answer is still arriving; a completed batch's results
   * are then kept by the service and streamed again without the gateway, to callers the gateway has authorized
   * for the batch. A broken stream resumes at any result with start_index.
   */
  StreamResults(argument: _otari_batch_v1_StreamResultsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_otari_batch_v1_StreamResultsResponse__Output>;
  StreamResults(argument: _otari_batch_v1_StreamResultsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_otari_batch_v1_StreamResultsResponse__Output>;
  /**
   * Streams the results of a completed batch in the gateway's order, in chunks of consecutive results (each
   * message at most about 256 KiB, one result if a single result is larger). A batch that is not completed
   * gets FAILED_PRECONDITION with its status in ErrorInfo.metadata["status"], unless `wait` is set. A batch of
   * several parts (Batch.parts) has results once it ended, however it ended: one per request, in the order the
   * requests were sent, an error result for each request its part has none for (its code says why:
   * batch_cancelled, batch_expired, batch_failed, result_missing).
   * The first stream of a batch flows while the gateway's answer is still arriving; a completed batch's results
   * are then kept by the service and streamed again without the gateway, to callers the gateway has authorized
   * for the batch. A broken stream resumes at any result with start_index.
   */
  streamResults(argument: _otari_batch_v1_StreamResultsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_otari_batch_v1_StreamResultsResponse__Output>;
  streamResults(argument: _otari_batch_v1_StreamResultsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_otari_batch_v1_StreamResultsResponse__Output>;
  
  /**
   * Creates a batch too large for one message: first a header (a CreateBatchRequest without requests), then the
   * requests in chunks, in order, as many as it takes. Nothing is created before the stream ends: an upload broken
   * off creates nothing and costs nothing. The requests are spooled to disk as they arrive, not held in memory.
   * Then it is CreateBatch: the same request_id with the same requests, however they were chunked (or sent in one
   * CreateBatch), is the same create.
   */
  UploadBatch(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_UploadBatchResponse__Output>): grpc.ClientWritableStream<_otari_batch_v1_UploadBatchRequest>;
  UploadBatch(metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_UploadBatchResponse__Output>): grpc.ClientWritableStream<_otari_batch_v1_UploadBatchRequest>;
  UploadBatch(options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_UploadBatchResponse__Output>): grpc.ClientWritableStream<_otari_batch_v1_UploadBatchRequest>;
  UploadBatch(callback: grpc.requestCallback<_otari_batch_v1_UploadBatchResponse__Output>): grpc.ClientWritableStream<_otari_batch_v1_UploadBatchRequest>;
  /**
   * Creates a batch too large for one message: first a header (a CreateBatchRequest without requests), then the
   * requests in chunks, in order, as many as it takes. Nothing is created before the stream ends: an upload broken
   * off creates nothing and costs nothing. The requests are spooled to disk as they arrive, not held in memory.
   * Then it is CreateBatch: the same request_id with the same requests, however they were chunked (or sent in one
   * CreateBatch), is the same create.
   */
  uploadBatch(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_UploadBatchResponse__Output>): grpc.ClientWritableStream<_otari_batch_v1_UploadBatchRequest>;
  uploadBatch(metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_UploadBatchResponse__Output>): grpc.ClientWritableStream<_otari_batch_v1_UploadBatchRequest>;
  uploadBatch(options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_UploadBatchResponse__Output>): grpc.ClientWritableStream<_otari_batch_v1_UploadBatchRequest>;
  uploadBatch(callback: grpc.requestCallback<_otari_batch_v1_UploadBatchResponse__Output>): grpc.ClientWritableStream<_otari_batch_v1_UploadBatchRequest>;
  
  /**
   * Waits (long-poll, like google.longrunning WaitOperation) until the batch is terminal or the timeout passes,
   * and returns its latest state either way. For clients that cannot stream.
   */
  WaitBatch(argument: _otari_batch_v1_WaitBatchRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_WaitBatchResponse__Output>): grpc.ClientUnaryCall;
  WaitBatch(argument: _otari_batch_v1_WaitBatchRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_WaitBatchResponse__Output>): grpc.ClientUnaryCall;
  WaitBatch(argument: _otari_batch_v1_WaitBatchRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_WaitBatchResponse__Output>): grpc.ClientUnaryCall;
  WaitBatch(argument: _otari_batch_v1_WaitBatchRequest, callback: grpc.requestCallback<_otari_batch_v1_WaitBatchResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Waits (long-poll, like google.longrunning WaitOperation) until the batch is terminal or the timeout passes,
   * and returns its latest state either way. For clients that cannot stream.
   */
  waitBatch(argument: _otari_batch_v1_WaitBatchRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_WaitBatchResponse__Output>): grpc.ClientUnaryCall;
  waitBatch(argument: _otari_batch_v1_WaitBatchRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_otari_batch_v1_WaitBatchResponse__Output>): grpc.ClientUnaryCall;
  waitBatch(argument: _otari_batch_v1_WaitBatchRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_otari_batch_v1_WaitBatchResponse__Output>): grpc.ClientUnaryCall;
  waitBatch(argument: _otari_batch_v1_WaitBatchRequest, callback: grpc.requestCallback<_otari_batch_v1_WaitBatchResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Subscribes to one batch: a snapshot first, then an event per observed change, heartbeats while nothing
   * changes, and OK after the terminal status was sent. Resume a broken stream with the last resume_token.
   * The service polls the gateway once per live batch, however many subscribers there are.
   */
  WatchBatch(argument: _otari_batch_v1_WatchBatchRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_otari_batch_v1_WatchBatchResponse__Output>;
  WatchBatch(argument: _otari_batch_v1_WatchBatchRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_otari_batch_v1_WatchBatchResponse__Output>;
  /**
   * Subscribes to one batch: a snapshot first, then an event per observed change, heartbeats while nothing
   * changes, and OK after the terminal status was sent. Resume a broken stream with the last resume_token.
   * The service polls the gateway once per live batch, however many subscribers there are.
   */
  watchBatch(argument: _otari_batch_v1_WatchBatchRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_otari_batch_v1_WatchBatchResponse__Output>;
  watchBatch(argument: _otari_batch_v1_WatchBatchRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_otari_batch_v1_WatchBatchResponse__Output>;
  
  /**
   * Subscribes to many batches on one stream: the listed ones, or every batch of yours this service knows,
   * including batches created after the stream opened. One batch's trouble never ends the stream: it is
   * reported per batch (UNAVAILABLE, REMOVED events). Resume a broken stream with the last resume_token.
   * Never ends on its own.
   */
  WatchBatches(argument: _otari_batch_v1_WatchBatchesRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_otari_batch_v1_WatchBatchesResponse__Output>;
  WatchBatches(argument: _otari_batch_v1_WatchBatchesRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_otari_batch_v1_WatchBatchesResponse__Output>;
  /**
   * Subscribes to many batches on one stream: the listed ones, or every batch of yours this service knows,
   * including batches created after the stream opened. One batch's trouble never ends the stream: it is
   * reported per batch (UNAVAILABLE, REMOVED events). Resume a broken stream with the last resume_token.
   * Never ends on its own.
   */
  watchBatches(argument: _otari_batch_v1_WatchBatchesRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_otari_batch_v1_WatchBatchesResponse__Output>;
  watchBatches(argument: _otari_batch_v1_WatchBatchesRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_otari_batch_v1_WatchBatchesResponse__Output>;
  
}

/**
 * Create, inspect, list and cancel batches of chat-completion requests, and stream their results.
 * 
 * Authentication: send your otari API key as call metadata, `authorization: Bearer <key>`, `otari-key: <key>`
 * or `x-api-key: <key>`. It is forwarded to the gateway on every call and stored only for work asked for in your
 * absence (CreateBatchRequest.max_attempts: kept encrypted for that batch alone, until it ends).
 * 
 * Errors carry a canonical status code and a google.rpc.ErrorInfo (reason, domain "batch.otari.mozilla.ai",
 * metadata); bad input also carries google.rpc.BadRequest field violations, and errors a retry can cure carry
 * google.rpc.RetryInfo.
 */
export interface BatchServiceHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Asks for a batch to be cancelled. The batch goes through CANCELLING to CANCELLED.
   */
  CancelBatch: grpc.handleUnaryCall<_otari_batch_v1_CancelBatchRequest__Output, _otari_batch_v1_CancelBatchResponse>;
  
  /**
   * Creates a batch. Validation happens here, before the gateway is called: a bad request costs nothing.
   */
  CreateBatch: grpc.handleUnaryCall<_otari_batch_v1_CreateBatchRequest__Output, _otari_batch_v1_CreateBatchResponse>;
  
  /**
   * Gets the current state of a batch.
   */
  GetBatch: grpc.handleUnaryCall<_otari_batch_v1_GetBatchRequest__Output, _otari_batch_v1_GetBatchResponse>;
  
  /**
   * Lists the caller's batches, newest first: every batch this service has shown the caller (so none is lost to
   * the gateway's owner-filtered pages, which carry no cursor), merged with the gateway's newest page of each
   * provider asked about, to discover batches made elsewhere. `incomplete_providers` says when that failed.
   */
  ListBatches: grpc.handleUnaryCall<_otari_batch_v1_ListBatchesRequest__Output, _otari_batch_v1_ListBatchesResponse>;
  
  /**
   * Streams the results of a completed batch in the gateway's order, in chunks of consecutive results (each
   * message at most about 256 KiB, one result if a single result is larger). A batch that is not completed
   * gets FAILED_PRECONDITION with its status in ErrorInfo.metadata["status"], unless `wait` is set. A batch of
   * several parts (Batch.parts) has results once it ended, however it ended: one per request, in the order the
   * requests were sent, an error result for each request its part has none for (its code says why:
   * batch_cancelled, batch_expired, batch_failed, result_missing).
   * The first stream of a batch flows while the gateway's answer is still arriving; a completed batch's results
   * are then kept by the service and streamed again without the gateway, to callers the gateway has authorized
   * for the batch. A broken stream resumes at any result with start_index.
   */
  StreamResults: grpc.handleServerStreamingCall<_otari_batch_v1_StreamResultsRequest__Output, _otari_batch_v1_StreamResultsResponse>;
  
  /**
   * Creates a batch too large for one message: first a header (a CreateBatchRequest without requests), then the
   * requests in chunks, in order, as many as it takes. Nothing is created before the stream ends: an upload broken
   * off creates nothing and costs nothing. The requests are spooled to disk as they arrive, not held in memory.
   * Then it is CreateBatch: the same request_id with the same requests, however they were chunked (or sent in one
   * CreateBatch), is the same create.
   */
  UploadBatch: grpc.handleClientStreamingCall<_otari_batch_v1_UploadBatchRequest__Output, _otari_batch_v1_UploadBatchResponse>;
  
  /**
   * Waits (long-poll, like google.longrunning WaitOperation) until the batch is terminal or the timeout passes,
   * and returns its latest state either way. For clients that cannot stream.
   */
  WaitBatch: grpc.handleUnaryCall<_otari_batch_v1_WaitBatchRequest__Output, _otari_batch_v1_WaitBatchResponse>;
  
  /**
   * Subscribes to one batch: a snapshot first, then an event per observed change, heartbeats while nothing
   * changes, and OK after the terminal status was sent. Resume a broken stream with the last resume_token.
   * The service polls the gateway once per live batch, however many subscribers there are.
   */
  WatchBatch: grpc.handleServerStreamingCall<_otari_batch_v1_WatchBatchRequest__Output, _otari_batch_v1_WatchBatchResponse>;
  
  /**
   * Subscribes to many batches on one stream: the listed ones, or every batch of yours this service knows,
   * including batches created after the stream opened. One batch's trouble never ends the stream: it is
   * reported per batch (UNAVAILABLE, REMOVED events). Resume a broken stream with the last resume_token.
   * Never ends on its own.
   */
  WatchBatches: grpc.handleServerStreamingCall<_otari_batch_v1_WatchBatchesRequest__Output, _otari_batch_v1_WatchBatchesResponse>;
  
}

export interface BatchServiceDefinition extends grpc.ServiceDefinition {
  CancelBatch: MethodDefinition<_otari_batch_v1_CancelBatchRequest, _otari_batch_v1_CancelBatchResponse, _otari_batch_v1_CancelBatchRequest__Output, _otari_batch_v1_CancelBatchResponse__Output>
  CreateBatch: MethodDefinition<_otari_batch_v1_CreateBatchRequest, _otari_batch_v1_CreateBatchResponse, _otari_batch_v1_CreateBatchRequest__Output, _otari_batch_v1_CreateBatchResponse__Output>
  GetBatch: MethodDefinition<_otari_batch_v1_GetBatchRequest, _otari_batch_v1_GetBatchResponse, _otari_batch_v1_GetBatchRequest__Output, _otari_batch_v1_GetBatchResponse__Output>
  ListBatches: MethodDefinition<_otari_batch_v1_ListBatchesRequest, _otari_batch_v1_ListBatchesResponse, _otari_batch_v1_ListBatchesRequest__Output, _otari_batch_v1_ListBatchesResponse__Output>
  StreamResults: MethodDefinition<_otari_batch_v1_StreamResultsRequest, _otari_batch_v1_StreamResultsResponse, _otari_batch_v1_StreamResultsRequest__Output, _otari_batch_v1_StreamResultsResponse__Output>
  UploadBatch: MethodDefinition<_otari_batch_v1_UploadBatchRequest, _otari_batch_v1_UploadBatchResponse, _otari_batch_v1_UploadBatchRequest__Output, _otari_batch_v1_UploadBatchResponse__Output>
  WaitBatch: MethodDefinition<_otari_batch_v1_WaitBatchRequest, _otari_batch_v1_WaitBatchResponse, _otari_batch_v1_WaitBatchRequest__Output, _otari_batch_v1_WaitBatchResponse__Output>
  WatchBatch: MethodDefinition<_otari_batch_v1_WatchBatchRequest, _otari_batch_v1_WatchBatchResponse, _otari_batch_v1_WatchBatchRequest__Output, _otari_batch_v1_WatchBatchResponse__Output>
  WatchBatches: MethodDefinition<_otari_batch_v1_WatchBatchesRequest, _otari_batch_v1_WatchBatchesResponse, _otari_batch_v1_WatchBatchesRequest__Output, _otari_batch_v1_WatchBatchesResponse__Output>
}
