// Original file: protos/otari/batch/v1/result.proto

import type { Struct as _google_protobuf_Struct, Struct__Output as _google_protobuf_Struct__Output } from '../../../google/protobuf/Struct';

/**
 * A function call: its name and its arguments as a JSON string.
 */
export interface FunctionCall {
  /**
   * The name of the function.
   */
  'name'?: (string);
  /**
   * The arguments, as the JSON text the model generated (it may not be valid JSON).
   */
  'arguments'?: (string);
  /**
   * Fields the gateway sent that have no typed field here.
   */
  'extra'?: (_google_protobuf_Struct | null);
}

/**
 * A function call: its name and its arguments as a JSON string.
 */
export interface FunctionCall__Output {
  /**
   * The name of the function.
   */
  'name': (string);
  /**
   * The arguments, as the JSON text the model generated (it may not be valid JSON).
   */
  'arguments': (string);
  /**
   * Fields the gateway sent that have no typed field here.
   */
  'extra': (_google_protobuf_Struct__Output | null);
}
