// Original file: ../../protos/otari/batch/v1/batch_service.proto

import type { Struct as _google_protobuf_Struct, Struct__Output as _google_protobuf_Struct__Output } from '../../../google/protobuf/Struct';

/**
 * One chat-completion request of a batch.
 */
export interface BatchRequestItem {
  /**
   * Your id for this request; it comes back with its result.
   * Required; 1 to 512 characters; unique within the batch.
   */
  'customId'?: (string);
  /**
   * The chat-completion request body, as OpenAI's /v1/chat/completions takes it (messages, max_tokens, ...).
   * Required and not empty. Its `model` is set by the gateway from CreateBatchRequest.model.
   */
  'body'?: (_google_protobuf_Struct | null);
}

/**
 * One chat-completion request of a batch.
 */
export interface BatchRequestItem__Output {
  /**
   * Your id for this request; it comes back with its result.
   * Required; 1 to 512 characters; unique within the batch.
   */
  'customId': (string);
  /**
   * The chat-completion request body, as OpenAI's /v1/chat/completions takes it (messages, max_tokens, ...).
   * Required and not empty. Its `model` is set by the gateway from CreateBatchRequest.model.
   */
  'body': (_google_protobuf_Struct__Output | null);
}
