// Original file: protos/otari/batch/v1/batch.proto

import type { Struct as _google_protobuf_Struct, Struct__Output as _google_protobuf_Struct__Output } from '../../../google/protobuf/Struct';
import type { Long } from '@grpc/proto-loader';

/**
 * Request counts of a batch.
 */
export interface RequestCounts {
  /**
   * How many requests the batch holds.
   */
  'total'?: (number | string | Long);
  /**
   * How many requests completed successfully.
   */
  'completed'?: (number | string | Long);
  /**
   * How many requests failed.
   */
  'failed'?: (number | string | Long);
  /**
   * Fields the gateway sent that have no typed field here.
   */
  'extra'?: (_google_protobuf_Struct | null);
}

/**
 * Request counts of a batch.
 */
export interface RequestCounts__Output {
  /**
   * How many requests the batch holds.
   */
  'total': (number);
  /**
   * How many requests completed successfully.
   */
  'completed': (number);
  /**
   * How many requests failed.
   */
  'failed': (number);
  /**
   * Fields the gateway sent that have no typed field here.
   */
  'extra': (_google_protobuf_Struct__Output | null);
}
