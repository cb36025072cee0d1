// Original file: protos/otari/batch/v1/result.proto

import type { Struct as _google_protobuf_Struct, Struct__Output as _google_protobuf_Struct__Output } from '../../../google/protobuf/Struct';
import type { Long } from '@grpc/proto-loader';

/**
 * A URL a message cites, and where in its text.
 */
export interface UrlCitation {
  /**
   * The index of the first character of the citation in the message's text.
   */
  'startIndex'?: (number | string | Long);
  /**
   * The index of the last character of the citation in the message's text.
   */
  'endIndex'?: (number | string | Long);
  /**
   * The URL of the web resource.
   */
  'url'?: (string);
  /**
   * The title of the web resource.
   */
  'title'?: (string);
  /**
   * Fields the gateway sent that have no typed field here.
   */
  'extra'?: (_google_protobuf_Struct | null);
}

/**
 * A URL a message cites, and where in its text.
 */
export interface UrlCitation__Output {
  /**
   * The index of the first character of the citation in the message's text.
   */
  'startIndex': (number);
  /**
   * The index of the last character of the citation in the message's text.
   */
  'endIndex': (number);
  /**
   * The URL of the web resource.
   */
  'url': (string);
  /**
   * The title of the web resource.
   */
  'title': (string);
  /**
   * Fields the gateway sent that have no typed field here.
   */
  'extra': (_google_protobuf_Struct__Output | null);
}
