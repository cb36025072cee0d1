import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from './google/protobuf/Duration';
import type { ListValue as _google_protobuf_ListValue, ListValue__Output as _google_protobuf_ListValue__Output } from './google/protobuf/ListValue';
import type { Struct as _google_protobuf_Struct, Struct__Output as _google_protobuf_Struct__Output } from './google/protobuf/Struct';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from './google/protobuf/Timestamp';
import type { Value as _google_protobuf_Value, Value__Output as _google_protobuf_Value__Output } from './google/protobuf/Value';
import type { Annotation as _otari_batch_v1_Annotation, Annotation__Output as _otari_batch_v1_Annotation__Output } from './otari/batch/v1/Annotation';
import type { Batch as _otari_batch_v1_Batch, Batch__Output as _otari_batch_v1_Batch__Output } from './otari/batch/v1/Batch';
import type { BatchError as _otari_batch_v1_BatchError, BatchError__Output as _otari_batch_v1_BatchError__Output } from './otari/batch/v1/BatchError';
import type { BatchEvent as _otari_batch_v1_BatchEvent, BatchEvent__Output as _otari_batch_v1_BatchEvent__Output } from './otari/batch/v1/BatchEvent';
import type { BatchPart as _otari_batch_v1_BatchPart, BatchPart__Output as _otari_batch_v1_BatchPart__Output } from './otari/batch/v1/BatchPart';
import type { BatchProblem as _otari_batch_v1_BatchProblem, BatchProblem__Output as _otari_batch_v1_BatchProblem__Output } from './otari/batch/v1/BatchProblem';
import type { BatchRequestItem as _otari_batch_v1_BatchRequestItem, BatchRequestItem__Output as _otari_batch_v1_BatchRequestItem__Output } from './otari/batch/v1/BatchRequestItem';
import type { BatchResult as _otari_batch_v1_BatchResult, BatchResult__Output as _otari_batch_v1_BatchResult__Output } from './otari/batch/v1/BatchResult';
import type { BatchServiceClient as _otari_batch_v1_BatchServiceClient, BatchServiceDefinition as _otari_batch_v1_BatchServiceDefinition } from './otari/batch/v1/BatchService';
import type { CancelBatchRequest as _otari_batch_v1_CancelBatchRequest, CancelBatchRequest__Output as _otari_batch_v1_CancelBatchRequest__Output } from './otari/batch/v1/CancelBatchRequest';
import type { CancelBatchResponse as _otari_batch_v1_CancelBatchResponse, CancelBatchResponse__Output as _otari_batch_v1_CancelBatchResponse__Output } from './otari/batch/v1/CancelBatchResponse';
import type { ChatCompletion as _otari_batch_v1_ChatCompletion, ChatCompletion__Output as _otari_batch_v1_ChatCompletion__Output } from './otari/batch/v1/ChatCompletion';
import type { ChatMessage as _otari_batch_v1_ChatMessage, ChatMessage__Output as _otari_batch_v1_ChatMessage__Output } from './otari/batch/v1/ChatMessage';
import type { Choice as _otari_batch_v1_Choice, Choice__Output as _otari_batch_v1_Choice__Output } from './otari/batch/v1/Choice';
import type { CompletionTokensDetails as _otari_batch_v1_CompletionTokensDetails, CompletionTokensDetails__Output as _otari_batch_v1_CompletionTokensDetails__Output } from './otari/batch/v1/CompletionTokensDetails';
import type { CompletionUsage as _otari_batch_v1_CompletionUsage, CompletionUsage__Output as _otari_batch_v1_CompletionUsage__Output } from './otari/batch/v1/CompletionUsage';
import type { CreateBatchRequest as _otari_batch_v1_CreateBatchRequest, CreateBatchRequest__Output as _otari_batch_v1_CreateBatchRequest__Output } from './otari/batch/v1/CreateBatchRequest';
import type { CreateBatchResponse as _otari_batch_v1_CreateBatchResponse, CreateBatchResponse__Output as _otari_batch_v1_CreateBatchResponse__Output } from './otari/batch/v1/CreateBatchResponse';
import type { FunctionCall as _otari_batch_v1_FunctionCall, FunctionCall__Output as _otari_batch_v1_FunctionCall__Output } from './otari/batch/v1/FunctionCall';
import type { GetBatchRequest as _otari_batch_v1_GetBatchRequest, GetBatchRequest__Output as _otari_batch_v1_GetBatchRequest__Output } from './otari/batch/v1/GetBatchRequest';
import type { GetBatchResponse as _otari_batch_v1_GetBatchResponse, GetBatchResponse__Output as _otari_batch_v1_GetBatchResponse__Output } from './otari/batch/v1/GetBatchResponse';
import type { InputTokensDetails as _otari_batch_v1_InputTokensDetails, InputTokensDetails__Output as _otari_batch_v1_InputTokensDetails__Output } from './otari/batch/v1/InputTokensDetails';
import type { ListBatchesRequest as _otari_batch_v1_ListBatchesRequest, ListBatchesRequest__Output as _otari_batch_v1_ListBatchesRequest__Output } from './otari/batch/v1/ListBatchesRequest';
import type { ListBatchesResponse as _otari_batch_v1_ListBatchesResponse, ListBatchesResponse__Output as _otari_batch_v1_ListBatchesResponse__Output } from './otari/batch/v1/ListBatchesResponse';
import type { OutputTokensDetails as _otari_batch_v1_OutputTokensDetails, OutputTokensDetails__Output as _otari_batch_v1_OutputTokensDetails__Output } from './otari/batch/v1/OutputTokensDetails';
import type { PromptTokensDetails as _otari_batch_v1_PromptTokensDetails, PromptTokensDetails__Output as _otari_batch_v1_PromptTokensDetails__Output } from './otari/batch/v1/PromptTokensDetails';
import type { RequestChunk as _otari_batch_v1_RequestChunk, RequestChunk__Output as _otari_batch_v1_RequestChunk__Output } from './otari/batch/v1/RequestChunk';
import type { RequestCounts as _otari_batch_v1_RequestCounts, RequestCounts__Output as _otari_batch_v1_RequestCounts__Output } from './otari/batch/v1/RequestCounts';
import type { ResultError as _otari_batch_v1_ResultError, ResultError__Output as _otari_batch_v1_ResultError__Output } from './otari/batch/v1/ResultError';
import type { StreamResultsRequest as _otari_batch_v1_StreamResultsRequest, StreamResultsRequest__Output as _otari_batch_v1_StreamResultsRequest__Output } from './otari/batch/v1/StreamResultsRequest';
import type { StreamResultsResponse as _otari_batch_v1_StreamResultsResponse, StreamResultsResponse__Output as _otari_batch_v1_StreamResultsResponse__Output } from './otari/batch/v1/StreamResultsResponse';
import type { ToolCall as _otari_batch_v1_ToolCall, ToolCall__Output as _otari_batch_v1_ToolCall__Output } from './otari/batch/v1/ToolCall';
import type { UploadBatchRequest as _otari_batch_v1_UploadBatchRequest, UploadBatchRequest__Output as _otari_batch_v1_UploadBatchRequest__Output } from './otari/batch/v1/UploadBatchRequest';
import type { UploadBatchResponse as _otari_batch_v1_UploadBatchResponse, UploadBatchResponse__Output as _otari_batch_v1_UploadBatchResponse__Output } from './otari/batch/v1/UploadBatchResponse';
import type { UrlCitation as _otari_batch_v1_UrlCitation, UrlCitation__Output as _otari_batch_v1_UrlCitation__Output } from './otari/batch/v1/UrlCitation';
import type { Usage as _otari_batch_v1_Usage, Usage__Output as _otari_batch_v1_Usage__Output } from './otari/batch/v1/Usage';
import type { WaitBatchRequest as _otari_batch_v1_WaitBatchRequest, WaitBatchRequest__Output as _otari_batch_v1_WaitBatchRequest__Output } from './otari/batch/v1/WaitBatchRequest';
import type { WaitBatchResponse as _otari_batch_v1_WaitBatchResponse, WaitBatchResponse__Output as _otari_batch_v1_WaitBatchResponse__Output } from './otari/batch/v1/WaitBatchResponse';
import type { WatchBatchRequest as _otari_batch_v1_WatchBatchRequest, WatchBatchRequest__Output as _otari_batch_v1_WatchBatchRequest__Output } from './otari/batch/v1/WatchBatchRequest';
import type { WatchBatchResponse as _otari_batch_v1_WatchBatchResponse, WatchBatchResponse__Output as _otari_batch_v1_WatchBatchResponse__Output } from './otari/batch/v1/WatchBatchResponse';
import type { WatchBatchesRequest as _otari_batch_v1_WatchBatchesRequest, WatchBatchesRequest__Output as _otari_batch_v1_WatchBatchesRequest__Output } from './otari/batch/v1/WatchBatchesRequest';
import type { WatchBatchesResponse as _otari_batch_v1_WatchBatchesResponse, WatchBatchesResponse__Output as _otari_batch_v1_WatchBatchesResponse__Output } from './otari/batch/v1/WatchBatchesResponse';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  google: {
    protobuf: {
      Duration: MessageTypeDefinition<_google_protobuf_Duration, _google_protobuf_Duration__Output>
      ListValue: MessageTypeDefinition<_google_protobuf_ListValue, _google_protobuf_ListValue__Output>
      NullValue: EnumTypeDefinition
      Struct: MessageTypeDefinition<_google_protobuf_Struct, _google_protobuf_Struct__Output>
      Timestamp: MessageTypeDefinition<_google_protobuf_Timestamp, _google_protobuf_Timestamp__Output>
      Value: MessageTypeDefinition<_google_protobuf_Value, _google_protobuf_Value__Output>
    }
  }
  otari: {
    batch: {
      v1: {
        Annotation: MessageTypeDefinition<_otari_batch_v1_Annotation, _otari_batch_v1_Annotation__Output>
        Batch: MessageTypeDefinition<_otari_batch_v1_Batch, _otari_batch_v1_Batch__Output>
        BatchError: MessageTypeDefinition<_otari_batch_v1_BatchError, _otari_batch_v1_BatchError__Output>
        BatchEvent: MessageTypeDefinition<_otari_batch_v1_BatchEvent, _otari_batch_v1_BatchEvent__Output>
        BatchEventKind: EnumTypeDefinition
        BatchPart: MessageTypeDefinition<_otari_batch_v1_BatchPart, _otari_batch_v1_BatchPart__Output>
        BatchProblem: MessageTypeDefinition<_otari_batch_v1_BatchProblem, _otari_batch_v1_BatchProblem__Output>
        BatchRequestItem: MessageTypeDefinition<_otari_batch_v1_BatchRequestItem, _otari_batch_v1_BatchRequestItem__Output>
        BatchResult: MessageTypeDefinition<_otari_batch_v1_BatchResult, _otari_batch_v1_BatchResult__Output>
        /**
         * Create, inspect, list and cancel batches of chat-completion requests, and stream their results.
         * 
         * Authentication: send your otari API key as call metadata, `authorization: Bearer <key>`, `otari-key: <key>`
         * or `x-api-key: <key>`. It is forwarded to the gateway on every call and stored only for work asked for in your
         * absence (CreateBatchRequest.max_attempts: kept encrypted for that batch alone, until it ends).
         * 
         * Errors carry a canonical status code and a google.rpc.ErrorInfo (reason, domain "batch.otari.mozilla.ai",
         * metadata); bad input also carries google.rpc.BadRequest field violations, and errors a retry can cure carry
         * google.rpc.RetryInfo.
         */
        BatchService: SubtypeConstructor<typeof grpc.Client, _otari_batch_v1_BatchServiceClient> & { service: _otari_batch_v1_BatchServiceDefinition }
        BatchStatus: EnumTypeDefinition
        CancelBatchRequest: MessageTypeDefinition<_otari_batch_v1_CancelBatchRequest, _otari_batch_v1_CancelBatchRequest__Output>
        CancelBatchResponse: MessageTypeDefinition<_otari_batch_v1_CancelBatchResponse, _otari_batch_v1_CancelBatchResponse__Output>
        ChatCompletion: MessageTypeDefinition<_otari_batch_v1_ChatCompletion, _otari_batch_v1_ChatCompletion__Output>
        ChatMessage: MessageTypeDefinition<_otari_batch_v1_ChatMessage, _otari_batch_v1_ChatMessage__Output>
        Choice: MessageTypeDefinition<_otari_batch_v1_Choice, _otari_batch_v1_Choice__Output>
        CompletionTokensDetails: MessageTypeDefinition<_otari_batch_v1_CompletionTokensDetails, _otari_batch_v1_CompletionTokensDetails__Output>
        CompletionUsage: MessageTypeDefinition<_otari_batch_v1_CompletionUsage, _otari_batch_v1_CompletionUsage__Output>
        CreateBatchRequest: MessageTypeDefinition<_otari_batch_v1_CreateBatchRequest, _otari_batch_v1_CreateBatchRequest__Output>
        CreateBatchResponse: MessageTypeDefinition<_otari_batch_v1_CreateBatchResponse, _otari_batch_v1_CreateBatchResponse__Output>
        FunctionCall: MessageTypeDefinition<_otari_batch_v1_FunctionCall, _otari_batch_v1_FunctionCall__Output>
        GetBatchRequest: MessageTypeDefinition<_otari_batch_v1_GetBatchRequest, _otari_batch_v1_GetBatchRequest__Output>
        GetBatchResponse: MessageTypeDefinition<_otari_batch_v1_GetBatchResponse, _otari_batch_v1_GetBatchResponse__Output>
        InputTokensDetails: MessageTypeDefinition<_otari_batch_v1_InputTokensDetails, _otari_batch_v1_InputTokensDetails__Output>
        ListBatchesRequest: MessageTypeDefinition<_otari_batch_v1_ListBatchesRequest, _otari_batch_v1_ListBatchesRequest__Output>
        ListBatchesResponse: MessageTypeDefinition<_otari_batch_v1_ListBatchesResponse, _otari_batch_v1_ListBatchesResponse__Output>
        OutputTokensDetails: MessageTypeDefinition<_otari_batch_v1_OutputTokensDetails, _otari_batch_v1_OutputTokensDetails__Output>
        PromptTokensDetails: MessageTypeDefinition<_otari_batch_v1_PromptTokensDetails, _otari_batch_v1_PromptTokensDetails__Output>
        RequestChunk: MessageTypeDefinition<_otari_batch_v1_RequestChunk, _otari_batch_v1_RequestChunk__Output>
        RequestCounts: MessageTypeDefinition<_otari_batch_v1_RequestCounts, _otari_batch_v1_RequestCounts__Output>
        ResultError: MessageTypeDefinition<_otari_batch_v1_ResultError, _otari_batch_v1_ResultError__Output>
        StreamResultsRequest: MessageTypeDefinition<_otari_batch_v1_StreamResultsRequest, _otari_batch_v1_StreamResultsRequest__Output>
        StreamResultsResponse: MessageTypeDefinition<_otari_batch_v1_StreamResultsResponse, _otari_batch_v1_StreamResultsResponse__Output>
        ToolCall: MessageTypeDefinition<_otari_batch_v1_ToolCall, _otari_batch_v1_ToolCall__Output>
        UploadBatchRequest: MessageTypeDefinition<_otari_batch_v1_UploadBatchRequest, _otari_batch_v1_UploadBatchRequest__Output>
        UploadBatchResponse: MessageTypeDefinition<_otari_batch_v1_UploadBatchResponse, _otari_batch_v1_UploadBatchResponse__Output>
        UrlCitation: MessageTypeDefinition<_otari_batch_v1_UrlCitation, _otari_batch_v1_UrlCitation__Output>
        Usage: MessageTypeDefinition<_otari_batch_v1_Usage, _otari_batch_v1_Usage__Output>
        WaitBatchRequest: MessageTypeDefinition<_otari_batch_v1_WaitBatchRequest, _otari_batch_v1_WaitBatchRequest__Output>
        WaitBatchResponse: MessageTypeDefinition<_otari_batch_v1_WaitBatchResponse, _otari_batch_v1_WaitBatchResponse__Output>
        WatchBatchRequest: MessageTypeDefinition<_otari_batch_v1_WatchBatchRequest, _otari_batch_v1_WatchBatchRequest__Output>
        WatchBatchResponse: MessageTypeDefinition<_otari_batch_v1_WatchBatchResponse, _otari_batch_v1_WatchBatchResponse__Output>
        WatchBatchesRequest: MessageTypeDefinition<_otari_batch_v1_WatchBatchesRequest, _otari_batch_v1_WatchBatchesRequest__Output>
        WatchBatchesResponse: MessageTypeDefinition<_otari_batch_v1_WatchBatchesResponse, _otari_batch_v1_WatchBatchesResponse__Output>
      }
    }
  }
}

