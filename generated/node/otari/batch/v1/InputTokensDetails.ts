// Original file: protos/otari/batch/v1/batch.proto

import type { Struct as _google_protobuf_Struct, Struct__Output as _google_protobuf_Struct__Output } from '../../../google/protobuf/Struct';
import type { Long } from '@grpc/proto-loader';

/**
 * A breakdown of input tokens.
 */
export interface InputTokensDetails {
  /**
   * Input tokens served from the provider's prompt cache.
   */
  'cachedTokens'?: (number | string | Long);
  /**
   * Fields the gateway sent that have no typed field here.
   */
  'extra'?: (_google_protobuf_Struct | null);
}

/**
 * A breakdown of input tokens.
 */
export interface InputTokensDetails__Output {
  /**
   * Input tokens served from the provider's prompt cache.
   */
  'cachedTokens': (number);
  /**
   * Fields the gateway sent that have no typed field here.
   */
  'extra': (_google_protobuf_Struct__Output | null);
}
