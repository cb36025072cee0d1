// Original file: protos/otari/batch/v1/batch.proto

/**
 * Where a batch is in its life. Terminal states are FAILED, COMPLETED, EXPIRED and CANCELLED.
 */
export const BatchStatus = {
  /**
   * The gateway sent a status this version of the contract does not know; read Batch.upstream_status.
   */
  BATCH_STATUS_UNSPECIFIED: 'BATCH_STATUS_UNSPECIFIED',
  /**
   * The input is being validated before the batch can start.
   */
  BATCH_STATUS_VALIDATING: 'BATCH_STATUS_VALIDATING',
  /**
   * Validation failed; the batch will not run. Terminal.
   */
  BATCH_STATUS_FAILED: 'BATCH_STATUS_FAILED',
  /**
   * The requests are running; request_counts move.
   */
  BATCH_STATUS_IN_PROGRESS: 'BATCH_STATUS_IN_PROGRESS',
  /**
   * All requests ran; the output is being written.
   */
  BATCH_STATUS_FINALIZING: 'BATCH_STATUS_FINALIZING',
  /**
   * Done: results can be read with StreamResults. Terminal.
   */
  BATCH_STATUS_COMPLETED: 'BATCH_STATUS_COMPLETED',
  /**
   * The completion window passed before the batch finished. Terminal.
   */
  BATCH_STATUS_EXPIRED: 'BATCH_STATUS_EXPIRED',
  /**
   * A cancel was asked for and is under way.
   */
  BATCH_STATUS_CANCELLING: 'BATCH_STATUS_CANCELLING',
  /**
   * Cancelled. Terminal.
   */
  BATCH_STATUS_CANCELLED: 'BATCH_STATUS_CANCELLED',
} as const;

/**
 * Where a batch is in its life. Terminal states are FAILED, COMPLETED, EXPIRED and CANCELLED.
 */
export type BatchStatus =
  /**
   * The gateway sent a status this version of the contract does not know; read Batch.upstream_status.
   */
  | 'BATCH_STATUS_UNSPECIFIED'
  | 0
  /**
   * The input is being validated before the batch can start.
   */
  | 'BATCH_STATUS_VALIDATING'
  | 1
  /**
   * Validation failed; the batch will not run. Terminal.
   */
  | 'BATCH_STATUS_FAILED'
  | 2
  /**
   * The requests are running; request_counts move.
   */
  | 'BATCH_STATUS_IN_PROGRESS'
  | 3
  /**
   * All requests ran; the output is being written.
   */
  | 'BATCH_STATUS_FINALIZING'
  | 4
  /**
   * Done: results can be read with StreamResults. Terminal.
   */
  | 'BATCH_STATUS_COMPLETED'
  | 5
  /**
   * The completion window passed before the batch finished. Terminal.
   */
  | 'BATCH_STATUS_EXPIRED'
  | 6
  /**
   * A cancel was asked for and is under way.
   */
  | 'BATCH_STATUS_CANCELLING'
  | 7
  /**
   * Cancelled. Terminal.
   */
  | 'BATCH_STATUS_CANCELLED'
  | 8

/**
 * Where a batch is in its life. Terminal states are FAILED, COMPLETED, EXPIRED and CANCELLED.
 */
export type BatchStatus__Output = typeof BatchStatus[keyof typeof BatchStatus]
