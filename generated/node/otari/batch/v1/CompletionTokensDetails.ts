// Original file: protos/otari/batch/v1/result.proto

import type { Struct as _google_protobuf_Struct, Struct__Output as _google_protobuf_Struct__Output } from '../../../google/protobuf/Struct';
import type { Long } from '@grpc/proto-loader';

/**
 * A breakdown of completion tokens.
 */
export interface CompletionTokensDetails {
  /**
   * Tokens spent on reasoning.
   */
  'reasoningTokens'?: (number | string | Long);
  /**
   * Audio output tokens.
   */
  'audioTokens'?: (number | string | Long);
  /**
   * Predicted-output tokens that appeared in the completion.
   */
  'acceptedPredictionTokens'?: (number | string | Long);
  /**
   * Predicted-output tokens that did not appear in the completion.
   */
  'rejectedPredictionTokens'?: (number | string | Long);
  /**
   * Fields the gateway sent that have no typed field here.
   */
  'extra'?: (_google_protobuf_Struct | null);
  '_reasoningTokens'?: "reasoningTokens";
  '_audioTokens'?: "audioTokens";
  '_acceptedPredictionTokens'?: "acceptedPredictionTokens";
  '_rejectedPredictionTokens'?: "rejectedPredictionTokens";
}

/**
 * A breakdown of completion tokens.
 */
export interface CompletionTokensDetails__Output {
  /**
   * Tokens spent on reasoning.
   */
  'reasoningTokens'?: (number);
  /**
   * Audio output tokens.
   */
  'audioTokens'?: (number);
  /**
   * Predicted-output tokens that appeared in the completion.
   */
  'acceptedPredictionTokens'?: (number);
  /**
   * Predicted-output tokens that did not appear in the completion.
   */
  'rejectedPredictionTokens'?: (number);
  /**
   * Fields the gateway sent that have no typed field here.
   */
  'extra': (_google_protobuf_Struct__Output | null);
  '_reasoningTokens'?: "reasoningTokens";
  '_audioTokens'?: "audioTokens";
  '_acceptedPredictionTokens'?: "acceptedPredictionTokens";
  '_rejectedPredictionTokens'?: "rejectedPredictionTokens";
}
