// Original file: protos/otari/batch/v1/watch.proto

/**
 * What a watch event says.
 */
export const BatchEventKind = {
  /**
   * Not sent.
   */
  BATCH_EVENT_KIND_UNSPECIFIED: 'BATCH_EVENT_KIND_UNSPECIFIED',
  /**
   * The batch's state when the watch started, or when it resumed and nothing was missed to replay.
   */
  BATCH_EVENT_KIND_SNAPSHOT: 'BATCH_EVENT_KIND_SNAPSHOT',
  /**
   * The batch changed: status, request_counts or any other field. While a stream is open, each change the
   * service keeps (WATCH_REVISIONS_KEPT per batch) is sent, a slow reader's too (from the store when it catches
   * up). A WatchBatch resume replays each one missed; a WatchBatches resume sends one event with the latest
   * state of each batch that changed meanwhile. The terminal event is never skipped.
   */
  BATCH_EVENT_KIND_CHANGE: 'BATCH_EVENT_KIND_CHANGE',
  /**
   * Nothing changed for a while: the stream is alive. Carries no batch; observed_at is now and resume_token
   * the same as the event before. The same shape on WatchBatch and WatchBatches.
   */
  BATCH_EVENT_KIND_HEARTBEAT: 'BATCH_EVENT_KIND_HEARTBEAT',
  /**
   * WatchBatches only: the service cannot follow this batch for now (the gateway or its provider does not
   * answer). `problem` says why; `batch` is the last state seen. Events for it resume when it recovers.
   */
  BATCH_EVENT_KIND_UNAVAILABLE: 'BATCH_EVENT_KIND_UNAVAILABLE',
  /**
   * WatchBatches only: the batch left this stream for good: the gateway no longer knows it, or no longer shows
   * it to you. `problem` says why; `batch` is the last state seen.
   */
  BATCH_EVENT_KIND_REMOVED: 'BATCH_EVENT_KIND_REMOVED',
} as const;

/**
 * What a watch event says.
 */
export type BatchEventKind =
  /**
   * Not sent.
   */
  | 'BATCH_EVENT_KIND_UNSPECIFIED'
  | 0
  /**
   * The batch's state when the watch started, or when it resumed and nothing was missed to replay.
   */
  | 'BATCH_EVENT_KIND_SNAPSHOT'
  | 1
  /**
   * The batch changed: status, request_counts or any other field. While a stream is open, each change the
   * service keeps (WATCH_REVISIONS_KEPT per batch) is sent, a slow reader's too (from the store when it catches
   * up). A WatchBatch resume replays each one missed; a WatchBatches resume sends one event with the latest
   * state of each batch that changed meanwhile. The terminal event is never skipped.
   */
  | 'BATCH_EVENT_KIND_CHANGE'
  | 2
  /**
   * Nothing changed for a while: the stream is alive. Carries no batch; observed_at is now and resume_token
   * the same as the event before. The same shape on WatchBatch and WatchBatches.
   */
  | 'BATCH_EVENT_KIND_HEARTBEAT'
  | 3
  /**
   * WatchBatches only: the service cannot follow this batch for now (the gateway or its provider does not
   * answer). `problem` says why; `batch` is the last state seen. Events for it resume when it recovers.
   */
  | 'BATCH_EVENT_KIND_UNAVAILABLE'
  | 4
  /**
   * WatchBatches only: the batch left this stream for good: the gateway no longer knows it, or no longer shows
   * it to you. `problem` says why; `batch` is the last state seen.
   */
  | 'BATCH_EVENT_KIND_REMOVED'
  | 5

/**
 * What a watch event says.
 */
export type BatchEventKind__Output = typeof BatchEventKind[keyof typeof BatchEventKind]
