// Original file: protos/otari/batch/v1/batch.proto

import type { BatchStatus as _otari_batch_v1_BatchStatus, BatchStatus__Output as _otari_batch_v1_BatchStatus__Output } from '../../../otari/batch/v1/BatchStatus';
import type { RequestCounts as _otari_batch_v1_RequestCounts, RequestCounts__Output as _otari_batch_v1_RequestCounts__Output } from '../../../otari/batch/v1/RequestCounts';
import type { BatchError as _otari_batch_v1_BatchError, BatchError__Output as _otari_batch_v1_BatchError__Output } from '../../../otari/batch/v1/BatchError';
import type { Usage as _otari_batch_v1_Usage, Usage__Output as _otari_batch_v1_Usage__Output } from '../../../otari/batch/v1/Usage';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../../google/protobuf/Timestamp';
import type { Struct as _google_protobuf_Struct, Struct__Output as _google_protobuf_Struct__Output } from '../../../google/protobuf/Struct';
import type { BatchPart as _otari_batch_v1_BatchPart, BatchPart__Output as _otari_batch_v1_BatchPart__Output } from '../../../otari/batch/v1/BatchPart';

/**
 * A batch as the gateway reports it. Every field the gateway sends is kept: what has no typed field is in `extra`.
 */
export interface Batch {
  /**
   * The batch id: the provider's, for example "batch_cdda...", for a batch that is one upstream batch; this
   * service's own, "obatch_...", for a batch made of several parts.
   */
  'id'?: (string);
  /**
   * The object type; always "batch".
   */
  'object'?: (string);
  /**
   * The endpoint every request of the batch goes to, for example "/v1/chat/completions".
   */
  'endpoint'?: (string);
  /**
   * The typed status. BATCH_STATUS_UNSPECIFIED when the gateway sent a status this contract does not know.
   */
  'status'?: (_otari_batch_v1_BatchStatus);
  /**
   * The status exactly as the gateway sent it ("in_progress"), also when `status` could not type it.
   */
  'upstreamStatus'?: (string);
  /**
   * The provider instance that holds the batch, for example "openai". Pass it back on later calls.
   */
  'provider'?: (string);
  /**
   * The bare model name the gateway ran the batch with, for example "gpt-4o-mini".
   */
  'model'?: (string);
  /**
   * The time window the batch has to complete in, for example "24h".
   */
  'completionWindow'?: (string);
  /**
   * The provider's id of the uploaded input file.
   */
  'inputFileId'?: (string);
  /**
   * The provider's id of the output file, once there is one.
   */
  'outputFileId'?: (string);
  /**
   * The provider's id of the error file, once there is one.
   */
  'errorFileId'?: (string);
  /**
   * How many requests the batch holds and how many have finished each way.
   */
  'requestCounts'?: (_otari_batch_v1_RequestCounts | null);
  /**
   * Key/value pairs attached at creation, as the caller set them. What the gateway and this service stamp beside
   * them is not here: it is `user` and `request_id`.
   */
  'metadata'?: ({[key: string]: string});
  /**
   * Errors that stopped the batch as a whole (validation failures), if any.
   */
  'errors'?: (_otari_batch_v1_BatchError)[];
  /**
   * Token usage of the batch so far.
   */
  'usage'?: (_otari_batch_v1_Usage | null);
  /**
   * When the batch was created.
   */
  'createdAt'?: (_google_protobuf_Timestamp | null);
  /**
   * When the batch started running.
   */
  'inProgressAt'?: (_google_protobuf_Timestamp | null);
  /**
   * When the batch started finalizing.
   */
  'finalizingAt'?: (_google_protobuf_Timestamp | null);
  /**
   * When the batch completed.
   */
  'completedAt'?: (_google_protobuf_Timestamp | null);
  /**
   * When the batch failed.
   */
  'failedAt'?: (_google_protobuf_Timestamp | null);
  /**
   * When the batch expired.
   */
  'expiredAt'?: (_google_protobuf_Timestamp | null);
  /**
   * When the batch will expire if it has not completed.
   */
  'expiresAt'?: (_google_protobuf_Timestamp | null);
  /**
   * When a cancel was asked for.
   */
  'cancellingAt'?: (_google_protobuf_Timestamp | null);
  /**
   * When the batch was cancelled.
   */
  'cancelledAt'?: (_google_protobuf_Timestamp | null);
  /**
   * Every field the gateway sent that has no typed field above, kept as JSON. Unset when there is none.
   */
  'extra'?: (_google_protobuf_Struct | null);
  /**
   * The user the batch belongs to, as the gateway recorded it (its `otari_user_id` metadata stamp).
   */
  'user'?: (string);
  /**
   * The CreateBatchRequest.request_id that made the batch through this service, when it was given one (the
   * service stamps it into the batch's metadata upstream, to find the batch again after a lost reply).
   */
  'requestId'?: (string);
  /**
   * The upstream batches this batch is made of, in request order, for whoever debugs; empty for a batch that is
   * one upstream batch. Counts and usage above are their sums, the timestamps the earliest start and the latest
   * end, and the status theirs by the rule written at BatchStatus.
   */
  'parts'?: (_otari_batch_v1_BatchPart)[];
  '_outputFileId'?: "outputFileId";
  '_errorFileId'?: "errorFileId";
}

/**
 * A batch as the gateway reports it. Every field the gateway sends is kept: what has no typed field is in `extra`.
 */
export interface Batch__Output {
  /**
   * The batch id: the provider's, for example "batch_cdda...", for a batch that is one upstream batch; this
   * service's own, "obatch_...", for a batch made of several parts.
   */
  'id': (string);
  /**
   * The object type; always "batch".
   */
  'object': (string);
  /**
   * The endpoint every request of the batch goes to, for example "/v1/chat/completions".
   */
  'endpoint': (string);
  /**
   * The typed status. BATCH_STATUS_UNSPECIFIED when the gateway sent a status this contract does not know.
   */
  'status': (_otari_batch_v1_BatchStatus__Output);
  /**
   * The status exactly as the gateway sent it ("in_progress"), also when `status` could not type it.
   */
  'upstreamStatus': (string);
  /**
   * The provider instance that holds the batch, for example "openai". Pass it back on later calls.
   */
  'provider': (string);
  /**
   * The bare model name the gateway ran the batch with, for example "gpt-4o-mini".
   */
  'model': (string);
  /**
   * The time window the batch has to complete in, for example "24h".
   */
  'completionWindow': (string);
  /**
   * The provider's id of the uploaded input file.
   */
  'inputFileId': (string);
  /**
   * The provider's id of the output file, once there is one.
   */
  'outputFileId'?: (string);
  /**
   * The provider's id of the error file, once there is one.
   */
  'errorFileId'?: (string);
  /**
   * How many requests the batch holds and how many have finished each way.
   */
  'requestCounts': (_otari_batch_v1_RequestCounts__Output | null);
  /**
   * Key/value pairs attached at creation, as the caller set them. What the gateway and this service stamp beside
   * them is not here: it is `user` and `request_id`.
   */
  'metadata': ({[key: string]: string});
  /**
   * Errors that stopped the batch as a whole (validation failures), if any.
   */
  'errors': (_otari_batch_v1_BatchError__Output)[];
  /**
   * Token usage of the batch so far.
   */
  'usage': (_otari_batch_v1_Usage__Output | null);
  /**
   * When the batch was created.
   */
  'createdAt': (_google_protobuf_Timestamp__Output | null);
  /**
   * When the batch started running.
   */
  'inProgressAt': (_google_protobuf_Timestamp__Output | null);
  /**
   * When the batch started finalizing.
   */
  'finalizingAt': (_google_protobuf_Timestamp__Output | null);
  /**
   * When the batch completed.
   */
  'completedAt': (_google_protobuf_Timestamp__Output | null);
  /**
   * When the batch failed.
   */
  'failedAt': (_google_protobuf_Timestamp__Output | null);
  /**
   * When the batch expired.
   */
  'expiredAt': (_google_protobuf_Timestamp__Output | null);
  /**
   * When the batch will expire if it has not completed.
   */
  'expiresAt': (_google_protobuf_Timestamp__Output | null);
  /**
   * When a cancel was asked for.
   */
  'cancellingAt': (_google_protobuf_Timestamp__Output | null);
  /**
   * When the batch was cancelled.
   */
  'cancelledAt': (_google_protobuf_Timestamp__Output | null);
  /**
   * Every field the gateway sent that has no typed field above, kept as JSON. Unset when there is none.
   */
  'extra': (_google_protobuf_Struct__Output | null);
  /**
   * The user the batch belongs to, as the gateway recorded it (its `otari_user_id` metadata stamp).
   */
  'user': (string);
  /**
   * The CreateBatchRequest.request_id that made the batch through this service, when it was given one (the
   * service stamps it into the batch's metadata upstream, to find the batch again after a lost reply).
   */
  'requestId': (string);
  /**
   * The upstream batches this batch is made of, in request order, for whoever debugs; empty for a batch that is
   * one upstream batch. Counts and usage above are their sums, the timestamps the earliest start and the latest
   * end, and the status theirs by the rule written at BatchStatus.
   */
  'parts': (_otari_batch_v1_BatchPart__Output)[];
  '_outputFileId'?: "outputFileId";
  '_errorFileId'?: "errorFileId";
}
