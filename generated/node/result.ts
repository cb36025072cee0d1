import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { ListValue as _google_protobuf_ListValue, ListValue__Output as _google_protobuf_ListValue__Output } from './google/protobuf/ListValue';
import type { Struct as _google_protobuf_Struct, Struct__Output as _google_protobuf_Struct__Output } from './google/protobuf/Struct';
import type { Value as _google_protobuf_Value, Value__Output as _google_protobuf_Value__Output } from './google/protobuf/Value';
import type { Annotation as _otari_batch_v1_Annotation, Annotation__Output as _otari_batch_v1_Annotation__Output } from './otari/batch/v1/Annotation';
import type { BatchResult as _otari_batch_v1_BatchResult, BatchResult__Output as _otari_batch_v1_BatchResult__Output } from './otari/batch/v1/BatchResult';
import type { ChatCompletion as _otari_batch_v1_ChatCompletion, ChatCompletion__Output as _otari_batch_v1_ChatCompletion__Output } from './otari/batch/v1/ChatCompletion';
import type { ChatMessage as _otari_batch_v1_ChatMessage, ChatMessage__Output as _otari_batch_v1_ChatMessage__Output } from './otari/batch/v1/ChatMessage';
import type { Choice as _otari_batch_v1_Choice, Choice__Output as _otari_batch_v1_Choice__Output } from './otari/batch/v1/Choice';
import type { CompletionTokensDetails as _otari_batch_v1_CompletionTokensDetails, CompletionTokensDetails__Output as _otari_batch_v1_CompletionTokensDetails__Output } from './otari/batch/v1/CompletionTokensDetails';
import type { CompletionUsage as _otari_batch_v1_CompletionUsage, CompletionUsage__Output as _otari_batch_v1_CompletionUsage__Output } from './otari/batch/v1/CompletionUsage';
import type { FunctionCall as _otari_batch_v1_FunctionCall, FunctionCall__Output as _otari_batch_v1_FunctionCall__Output } from './otari/batch/v1/FunctionCall';
import type { PromptTokensDetails as _otari_batch_v1_PromptTokensDetails, PromptTokensDetails__Output as _otari_batch_v1_PromptTokensDetails__Output } from './otari/batch/v1/PromptTokensDetails';
import type { ResultError as _otari_batch_v1_ResultError, ResultError__Output as _otari_batch_v1_ResultError__Output } from './otari/batch/v1/ResultError';
import type { ToolCall as _otari_batch_v1_ToolCall, ToolCall__Output as _otari_batch_v1_ToolCall__Output } from './otari/batch/v1/ToolCall';
import type { UrlCitation as _otari_batch_v1_UrlCitation, UrlCitation__Output as _otari_batch_v1_UrlCitation__Output } from './otari/batch/v1/UrlCitation';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  google: {
    protobuf: {
      ListValue: MessageTypeDefinition<_google_protobuf_ListValue, _google_protobuf_ListValue__Output>
      NullValue: EnumTypeDefinition
      Struct: MessageTypeDefinition<_google_protobuf_Struct, _google_protobuf_Struct__Output>
      Value: MessageTypeDefinition<_google_protobuf_Value, _google_protobuf_Value__Output>
    }
  }
  otari: {
    batch: {
      v1: {
        Annotation: MessageTypeDefinition<_otari_batch_v1_Annotation, _otari_batch_v1_Annotation__Output>
        BatchResult: MessageTypeDefinition<_otari_batch_v1_BatchResult, _otari_batch_v1_BatchResult__Output>
        ChatCompletion: MessageTypeDefinition<_otari_batch_v1_ChatCompletion, _otari_batch_v1_ChatCompletion__Output>
        ChatMessage: MessageTypeDefinition<_otari_batch_v1_ChatMessage, _otari_batch_v1_ChatMessage__Output>
        Choice: MessageTypeDefinition<_otari_batch_v1_Choice, _otari_batch_v1_Choice__Output>
        CompletionTokensDetails: MessageTypeDefinition<_otari_batch_v1_CompletionTokensDetails, _otari_batch_v1_CompletionTokensDetails__Output>
        CompletionUsage: MessageTypeDefinition<_otari_batch_v1_CompletionUsage, _otari_batch_v1_CompletionUsage__Output>
        FunctionCall: MessageTypeDefinition<_otari_batch_v1_FunctionCall, _otari_batch_v1_FunctionCall__Output>
        PromptTokensDetails: MessageTypeDefinition<_otari_batch_v1_PromptTokensDetails, _otari_batch_v1_PromptTokensDetails__Output>
        ResultError: MessageTypeDefinition<_otari_batch_v1_ResultError, _otari_batch_v1_ResultError__Output>
        ToolCall: MessageTypeDefinition<_otari_batch_v1_ToolCall, _otari_batch_v1_ToolCall__Output>
        UrlCitation: MessageTypeDefinition<_otari_batch_v1_UrlCitation, _otari_batch_v1_UrlCitation__Output>
      }
    }
  }
}

