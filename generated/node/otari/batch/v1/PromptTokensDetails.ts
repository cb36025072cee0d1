// Original file: protos/otari/batch/v1/result.proto

import type { Struct as _google_protobuf_Struct, Struct__Output as _google_protobuf_Struct__Output } from '../../../google/protobuf/Struct';
import type { Long } from '@grpc/proto-loader';

/**
 * A breakdown of prompt tokens.
 */
export interface PromptTokensDetails {
  /**
   * Prompt tokens served from the provider's cache.
   */
  'cachedTokens'?: (number | string | Long);
  /**
   * Audio input tokens.
   */
  'audioTokens'?: (number | string | Long);
  /**
   * Fields the gateway sent that have no typed field here (for example `text_tokens`, `image_tokens`).
   */
  'extra'?: (_google_protobuf_Struct | null);
  '_cachedTokens'?: "cachedTokens";
  '_audioTokens'?: "audioTokens";
}

/**
 * A breakdown of prompt tokens.
 */
export interface PromptTokensDetails__Output {
  /**
   * Prompt tokens served from the provider's cache.
   */
  'cachedTokens'?: (number);
  /**
   * Audio input tokens.
   */
  'audioTokens'?: (number);
  /**
   * Fields the gateway sent that have no typed field here (for example `text_tokens`, `image_tokens`).
   */
  'extra': (_google_protobuf_Struct__Output | null);
  '_cachedTokens'?: "cachedTokens";
  '_audioTokens'?: "audioTokens";
}
