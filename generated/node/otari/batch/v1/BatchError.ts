// Original file: protos/otari/batch/v1/batch.proto

import type { Struct as _google_protobuf_Struct, Struct__Output as _google_protobuf_Struct__Output } from '../../../google/protobuf/Struct';
import type { Long } from '@grpc/proto-loader';

/**
 * An error that stopped a batch as a whole.
 */
export interface BatchError {
  /**
   * A machine-readable error code.
   */
  'code'?: (string);
  /**
   * A human-readable message.
   */
  'message'?: (string);
  /**
   * The input parameter the error is about, if any.
   */
  'param'?: (string);
  /**
   * The line of the input file the error is about, if any.
   */
  'line'?: (number | string | Long);
  /**
   * Fields the gateway sent that have no typed field here.
   */
  'extra'?: (_google_protobuf_Struct | null);
  '_param'?: "param";
  '_line'?: "line";
}

/**
 * An error that stopped a batch as a whole.
 */
export interface BatchError__Output {
  /**
   * A machine-readable error code.
   */
  'code': (string);
  /**
   * A human-readable message.
   */
  'message': (string);
  /**
   * The input parameter the error is about, if any.
   */
  'param'?: (string);
  /**
   * The line of the input file the error is about, if any.
   */
  'line'?: (number);
  /**
   * Fields the gateway sent that have no typed field here.
   */
  'extra': (_google_protobuf_Struct__Output | null);
  '_param'?: "param";
  '_line'?: "line";
}
