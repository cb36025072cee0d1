// Original file: protos/otari/batch/v1/batch_service.proto

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
   * The body as a Struct. A Struct number is a double: integers beyond 2^53 (a seed, say) lose precision.
   */
  'body'?: (_google_protobuf_Struct | null);
  /**
   * The body as JSON text, one object, for example `{"messages": [...], "max_tokens": 64}`. Passed to the
   * gateway as written, with no conversion on either side: the faster choice for large batches, and exact for
   * every number. It must be valid JSON (RFC 8259) and an object.
   */
  'bodyJson'?: (string);
  /**
   * The chat-completion request body, as OpenAI's /v1/chat/completions takes it (messages, max_tokens, ...).
   * Required and not empty, as either field. Its `model` is set by the gateway from CreateBatchRequest.model.
   */
  'content'?: "body"|"bodyJson";
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
   * The body as a Struct. A Struct number is a double: integers beyond 2^53 (a seed, say) lose precision.
   */
  'body'?: (_google_protobuf_Struct__Output | null);
  /**
   * The body as JSON text, one object, for example `{"messages": [...], "max_tokens": 64}`. Passed to the
   * gateway as written, with no conversion on either side: the faster choice for large batches, and exact for
   * every number. It must be valid JSON (RFC 8259) and an object.
   */
  'bodyJson'?: (string);
  /**
   * The chat-completion request body, as OpenAI's /v1/chat/completions takes it (messages, max_tokens, ...).
   * Required and not empty, as either field. Its `model` is set by the gateway from CreateBatchRequest.model.
   */
  'content'?: "body"|"bodyJson";
}
