// Original file: protos/otari/batch/v1/result.proto

import type { FunctionCall as _otari_batch_v1_FunctionCall, FunctionCall__Output as _otari_batch_v1_FunctionCall__Output } from '../../../otari/batch/v1/FunctionCall';
import type { Struct as _google_protobuf_Struct, Struct__Output as _google_protobuf_Struct__Output } from '../../../google/protobuf/Struct';

/**
 * A tool call asked for by the model.
 */
export interface ToolCall {
  /**
   * The id of the tool call.
   */
  'id'?: (string);
  /**
   * The type of the tool; "function".
   */
  'type'?: (string);
  /**
   * The function the model called.
   */
  'function'?: (_otari_batch_v1_FunctionCall | null);
  /**
   * Fields the gateway sent that have no typed field here.
   */
  'extra'?: (_google_protobuf_Struct | null);
}

/**
 * A tool call asked for by the model.
 */
export interface ToolCall__Output {
  /**
   * The id of the tool call.
   */
  'id': (string);
  /**
   * The type of the tool; "function".
   */
  'type': (string);
  /**
   * The function the model called.
   */
  'function': (_otari_batch_v1_FunctionCall__Output | null);
  /**
   * Fields the gateway sent that have no typed field here.
   */
  'extra': (_google_protobuf_Struct__Output | null);
}
