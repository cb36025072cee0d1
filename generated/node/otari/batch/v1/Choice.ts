// Original file: protos/otari/batch/v1/result.proto

import type { ChatMessage as _otari_batch_v1_ChatMessage, ChatMessage__Output as _otari_batch_v1_ChatMessage__Output } from '../../../otari/batch/v1/ChatMessage';
import type { Struct as _google_protobuf_Struct, Struct__Output as _google_protobuf_Struct__Output } from '../../../google/protobuf/Struct';
import type { Long } from '@grpc/proto-loader';

/**
 * One generated choice.
 */
export interface Choice {
  /**
   * The position of this choice in the list.
   */
  'index'?: (number | string | Long);
  /**
   * The generated message.
   */
  'message'?: (_otari_batch_v1_ChatMessage | null);
  /**
   * Why generation stopped: "stop", "length", "tool_calls", "content_filter" or "function_call".
   */
  'finishReason'?: (string);
  /**
   * Fields the gateway sent that have no typed field here (for example `logprobs`).
   */
  'extra'?: (_google_protobuf_Struct | null);
  '_finishReason'?: "finishReason";
}

/**
 * One generated choice.
 */
export interface Choice__Output {
  /**
   * The position of this choice in the list.
   */
  'index': (number);
  /**
   * The generated message.
   */
  'message': (_otari_batch_v1_ChatMessage__Output | null);
  /**
   * Why generation stopped: "stop", "length", "tool_calls", "content_filter" or "function_call".
   */
  'finishReason'?: (string);
  /**
   * Fields the gateway sent that have no typed field here (for example `logprobs`).
   */
  'extra': (_google_protobuf_Struct__Output | null);
  '_finishReason'?: "finishReason";
}
