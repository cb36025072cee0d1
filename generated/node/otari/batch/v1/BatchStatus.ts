// Original file: protos/otari/batch/v1/batch.proto

/**
 * Where a batch is in its life. Terminal states are FAILED, COMPLETED, EXPIRED and CANCELLED.
 * 
 * A batch larger than one upstream batch is made of parts (Batch.parts); its status is its parts' by one rule,
 * which gives a batch of one part that part's status:
 * - while any part is live (or a re-run is pending): CANCELLING once a cancel was asked (or a part is cancelling
 * or was cancelled), else the least advanced status of the live parts, VALIDATING before IN_PROGRESS before
 * FINALIZING (IN_PROGRESS while only a re-run is pending);
 * - once every part is terminal and nothing is pending: CANCELLED if a cancel was asked or a part was cancelled,
 * else COMPLETED if any part completed, else EXPIRED if every part expired, else FAILED.
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
 * 
 * A batch larger than one upstream batch is made of parts (Batch.parts); its status is its parts' by one rule,
 * which gives a batch of one part that part's status:
 * - while any part is live (or a re-run is pending): CANCELLING once a cancel was asked (or a part is cancelling
 * or was cancelled), else the least advanced status of the live parts, VALIDATING before IN_PROGRESS before
 * FINALIZING (IN_PROGRESS while only a re-run is pending);
 * - once every part is terminal and nothing is pending: CANCELLED if a cancel was asked or a part was cancelled,
 * else COMPLETED if any part completed, else EXPIRED if every part expired, else FAILED.
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
 * 
 * A batch larger than one upstream batch is made of parts (Batch.parts); its status is its parts' by one rule,
 * which gives a batch of one part that part's status:
 * - while any part is live (or a re-run is pending): CANCELLING once a cancel was asked (or a part is cancelling
 * or was cancelled), else the least advanced status of the live parts, VALIDATING before IN_PROGRESS before
 * FINALIZING (IN_PROGRESS while only a re-run is pending);
 * - once every part is terminal and nothing is pending: CANCELLED if a cancel was asked or a part was cancelled,
 * else COMPLETED if any part completed, else EXPIRED if every part expired, else FAILED.
 */
export type BatchStatus__Output = typeof BatchStatus[keyof typeof BatchStatus]
