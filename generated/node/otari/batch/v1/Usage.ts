// Original file: protos/otari/batch/v1/batch.proto

import type { InputTokensDetails as _otari_batch_v1_InputTokensDetails, InputTokensDetails__Output as _otari_batch_v1_InputTokensDetails__Output } from '../../../otari/batch/v1/InputTokensDetails';
import type { OutputTokensDetails as _otari_batch_v1_OutputTokensDetails, OutputTokensDetails__Output as _otari_batch_v1_OutputTokensDetails__Output } from '../../../otari/batch/v1/OutputTokensDetails';
import type { Struct as _google_protobuf_Struct, Struct__Output as _google_protobuf_Struct__Output } from '../../../google/protobuf/Struct';
import type { Long } from '@grpc/proto-loader';

/**
 * Token usage of a batch.
 */
export interface Usage {
  /**
   * Input tokens used.
   */
  'inputTokens'?: (number | string | Long);
  /**
   * Output tokens used.
   */
  'outputTokens'?: (number | string | Long);
  /**
   * Input plus output tokens.
   */
  'totalTokens'?: (number | string | Long);
  /**
   * A breakdown of the input tokens.
   */
  'inputTokensDetails'?: (_otari_batch_v1_InputTokensDetails | null);
  /**
   * A breakdown of the output tokens.
   */
  'outputTokensDetails'?: (_otari_batch_v1_OutputTokensDetails | null);
  /**
   * Fields the gateway sent that have no typed field here.
   */
  'extra'?: (_google_protobuf_Struct | null);
}

/**
 * Token usage of a batch.
 */
export interface Usage__Output {
  /**
   * Input tokens used.
   */
  'inputTokens': (number);
  /**
   * Output tokens used.
   */
  'outputTokens': (number);
  /**
   * Input plus output tokens.
   */
  'totalTokens': (number);
  /**
   * A breakdown of the input tokens.
   */
  'inputTokensDetails': (_otari_batch_v1_InputTokensDetails__Output | null);
  /**
   * A breakdown of the output tokens.
   */
  'outputTokensDetails': (_otari_batch_v1_OutputTokensDetails__Output | null);
  /**
   * Fields the gateway sent that have no typed field here.
   */
  'extra': (_google_protobuf_Struct__Output | null);
}
