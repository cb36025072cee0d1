// Original file: protos/otari/batch/v1/result.proto

import type { UrlCitation as _otari_batch_v1_UrlCitation, UrlCitation__Output as _otari_batch_v1_UrlCitation__Output } from '../../../otari/batch/v1/UrlCitation';
import type { Struct as _google_protobuf_Struct, Struct__Output as _google_protobuf_Struct__Output } from '../../../google/protobuf/Struct';

/**
 * A note on a message's text.
 */
export interface Annotation {
  /**
   * The kind of note; "url_citation".
   */
  'type'?: (string);
  /**
   * The URL cited, when type is "url_citation".
   */
  'urlCitation'?: (_otari_batch_v1_UrlCitation | null);
  /**
   * Fields the gateway sent that have no typed field here.
   */
  'extra'?: (_google_protobuf_Struct | null);
}

/**
 * A note on a message's text.
 */
export interface Annotation__Output {
  /**
   * The kind of note; "url_citation".
   */
  'type': (string);
  /**
   * The URL cited, when type is "url_citation".
   */
  'urlCitation': (_otari_batch_v1_UrlCitation__Output | null);
  /**
   * Fields the gateway sent that have no typed field here.
   */
  'extra': (_google_protobuf_Struct__Output | null);
}
