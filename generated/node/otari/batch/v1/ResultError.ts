// Original file: protos/otari/batch/v1/result.proto

import type { Struct as _google_protobuf_Struct, Struct__Output as _google_protobuf_Struct__Output } from '../../../google/protobuf/Struct';

/**
 * Why one request of a batch failed.
 */
export interface ResultError {
  /**
   * A machine-readable error code, for example "rate_limit_exceeded"; "unknown" when the provider gave none.
   */
  'code'?: (string);
  /**
   * A human-readable message.
   */
  'message'?: (string);
  /**
   * Fields the gateway sent that have no typed field here.
   */
  'extra'?: (_google_protobuf_Struct | null);
}

/**
 * Why one request of a batch failed.
 */
export interface ResultError__Output {
  /**
   * A machine-readable error code, for example "rate_limit_exceeded"; "unknown" when the provider gave none.
   */
  'code': (string);
  /**
   * A human-readable message.
   */
  'message': (string);
  /**
   * Fields the gateway sent that have no typed field here.
   */
  'extra': (_google_protobuf_Struct__Output | null);
}
