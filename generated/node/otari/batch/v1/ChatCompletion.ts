// Original file: protos/otari/batch/v1/result.proto

import type { Choice as _otari_batch_v1_Choice, Choice__Output as _otari_batch_v1_Choice__Output } from '../../../otari/batch/v1/Choice';
import type { CompletionUsage as _otari_batch_v1_CompletionUsage, CompletionUsage__Output as _otari_batch_v1_CompletionUsage__Output } from '../../../otari/batch/v1/CompletionUsage';
import type { Struct as _google_protobuf_Struct, Struct__Output as _google_protobuf_Struct__Output } from '../../../google/protobuf/Struct';
import type { Long } from '@grpc/proto-loader';

/**
 * An OpenAI `chat.completion` object as the gateway returns it. Fields without a typed home are kept in `extra`.
 */
export interface ChatCompletion {
  /**
   * The completion id, for example "chatcmpl-...".
   */
  'id'?: (string);
  /**
   * The object type; "chat.completion".
   */
  'object'?: (string);
  /**
   * When the completion was created, in seconds since the Unix epoch.
   */
  'created'?: (number | string | Long);
  /**
   * The model that produced the completion.
   */
  'model'?: (string);
  /**
   * The generated choices, usually one.
   */
  'choices'?: (_otari_batch_v1_Choice)[];
  /**
   * Token usage of this completion.
   */
  'usage'?: (_otari_batch_v1_CompletionUsage | null);
  /**
   * The backend configuration fingerprint, if the provider sent one.
   */
  'systemFingerprint'?: (string);
  /**
   * The service tier that served the request, if the provider sent one.
   */
  'serviceTier'?: (string);
  /**
   * Fields the gateway sent that have no typed field here (for example `moderation`, `metadata`).
   */
  'extra'?: (_google_protobuf_Struct | null);
  '_systemFingerprint'?: "systemFingerprint";
  '_serviceTier'?: "serviceTier";
}

/**
 * An OpenAI `chat.completion` object as the gateway returns it. Fields without a typed home are kept in `extra`.
 */
export interface ChatCompletion__Output {
  /**
   * The completion id, for example "chatcmpl-...".
   */
  'id': (string);
  /**
   * The object type; "chat.completion".
   */
  'object': (string);
  /**
   * When the completion was created, in seconds since the Unix epoch.
   */
  'created': (number);
  /**
   * The model that produced the completion.
   */
  'model': (string);
  /**
   * The generated choices, usually one.
   */
  'choices': (_otari_batch_v1_Choice__Output)[];
  /**
   * Token usage of this completion.
   */
  'usage': (_otari_batch_v1_CompletionUsage__Output | null);
  /**
   * The backend configuration fingerprint, if the provider sent one.
   */
  'systemFingerprint'?: (string);
  /**
   * The service tier that served the request, if the provider sent one.
   */
  'serviceTier'?: (string);
  /**
   * Fields the gateway sent that have no typed field here (for example `moderation`, `metadata`).
   */
  'extra': (_google_protobuf_Struct__Output | null);
  '_systemFingerprint'?: "systemFingerprint";
  '_serviceTier'?: "serviceTier";
}
