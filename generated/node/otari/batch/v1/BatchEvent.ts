// Original file: protos/otari/batch/v1/watch.proto

import type { BatchEventKind as _otari_batch_v1_BatchEventKind, BatchEventKind__Output as _otari_batch_v1_BatchEventKind__Output } from '../../../otari/batch/v1/BatchEventKind';
import type { Batch as _otari_batch_v1_Batch, Batch__Output as _otari_batch_v1_Batch__Output } from '../../../otari/batch/v1/Batch';
import type { BatchStatus as _otari_batch_v1_BatchStatus, BatchStatus__Output as _otari_batch_v1_BatchStatus__Output } from '../../../otari/batch/v1/BatchStatus';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../../google/protobuf/Timestamp';
import type { BatchProblem as _otari_batch_v1_BatchProblem, BatchProblem__Output as _otari_batch_v1_BatchProblem__Output } from '../../../otari/batch/v1/BatchProblem';

/**
 * One event of a watch stream.
 */
export interface BatchEvent {
  /**
   * What this event says.
   */
  'kind'?: (_otari_batch_v1_BatchEventKind);
  /**
   * The batch's full state as of this event; the last state seen on UNAVAILABLE and REMOVED; unset on HEARTBEAT.
   */
  'batch'?: (_otari_batch_v1_Batch | null);
  /**
   * The status the batch had in the event before this one on this stream (UNSPECIFIED on a snapshot).
   */
  'previousStatus'?: (_otari_batch_v1_BatchStatus);
  /**
   * When the service observed this state at the gateway.
   */
  'observedAt'?: (_google_protobuf_Timestamp | null);
  /**
   * Opaque: pass to WatchBatch (or WatchBatches, with the same batch_ids) to resume after this event, also
   * after a reconnect or a server restart.
   */
  'resumeToken'?: (string);
  /**
   * On UNAVAILABLE and REMOVED events: what happened.
   */
  'problem'?: (_otari_batch_v1_BatchProblem | null);
}

/**
 * One event of a watch stream.
 */
export interface BatchEvent__Output {
  /**
   * What this event says.
   */
  'kind': (_otari_batch_v1_BatchEventKind__Output);
  /**
   * The batch's full state as of this event; the last state seen on UNAVAILABLE and REMOVED; unset on HEARTBEAT.
   */
  'batch': (_otari_batch_v1_Batch__Output | null);
  /**
   * The status the batch had in the event before this one on this stream (UNSPECIFIED on a snapshot).
   */
  'previousStatus': (_otari_batch_v1_BatchStatus__Output);
  /**
   * When the service observed this state at the gateway.
   */
  'observedAt': (_google_protobuf_Timestamp__Output | null);
  /**
   * Opaque: pass to WatchBatch (or WatchBatches, with the same batch_ids) to resume after this event, also
   * after a reconnect or a server restart.
   */
  'resumeToken': (string);
  /**
   * On UNAVAILABLE and REMOVED events: what happened.
   */
  'problem': (_otari_batch_v1_BatchProblem__Output | null);
}
