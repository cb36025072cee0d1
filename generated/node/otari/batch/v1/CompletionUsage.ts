// Original file: protos/otari/batch/v1/result.proto

import type { PromptTokensDetails as _otari_batch_v1_PromptTokensDetails, PromptTokensDetails__Output as _otari_batch_v1_PromptTokensDetails__Output } from '../../../otari/batch/v1/PromptTokensDetails';
import type { CompletionTokensDetails as _otari_batch_v1_CompletionTokensDetails, CompletionTokensDetails__Output as _otari_batch_v1_CompletionTokensDetails__Output } from '../../../otari/batch/v1/CompletionTokensDetails';
import type { Struct as _google_protobuf_Struct, Struct__Output as _google_protobuf_Struct__Output } from '../../../google/protobuf/Struct';
import type { Long } from '@grpc/proto-loader';

/**
 * Token usage of one completion.
 */
export interface CompletionUsage {
  /**
   * Tokens in the prompt.
   */
  'promptTokens'?: (number | string | Long);
  /**
   * Tokens in the completion.
   */
  'completionTokens'?: (number | string | Long);
  /**
   * Prompt plus completion tokens.
   */
  'totalTokens'?: (number | string | Long);
  /**
   * A breakdown of the prompt tokens.
   */
  'promptTokensDetails'?: (_otari_batch_v1_PromptTokensDetails | null);
  /**
   * A breakdown of the completion tokens.
   */
  'completionTokensDetails'?: (_otari_batch_v1_CompletionTokensDetails | null);
  /**
   * Fields the gateway sent that have no typed field here.
   */
  'extra'?: (_google_protobuf_Struct | null);
}

/**
 * Token usage of one completion.
 */
export interface CompletionUsage__Output {
  /**
   * Tokens in the prompt.
   */
  'promptTokens': (number);
  /**
   * Tokens in the completion.
   */
  'completionTokens': (number);
  /**
   * Prompt plus completion tokens.
   */
  'totalTokens': (number);
  /**
   * A breakdown of the prompt tokens.
   */
  'promptTokensDetails': (_otari_batch_v1_PromptTokensDetails__Output | null);
  /**
   * A breakdown of the completion tokens.
   */
  'completionTokensDetails': (_otari_batch_v1_CompletionTokensDetails__Output | null);
  /**
   * Fields the gateway sent that have no typed field here.
   */
  'extra': (_google_protobuf_Struct__Output | null);
}
