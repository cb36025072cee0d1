import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { ListValue as _google_protobuf_ListValue, ListValue__Output as _google_protobuf_ListValue__Output } from './google/protobuf/ListValue';
import type { Struct as _google_protobuf_Struct, Struct__Output as _google_protobuf_Struct__Output } from './google/protobuf/Struct';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from './google/protobuf/Timestamp';
import type { Value as _google_protobuf_Value, Value__Output as _google_protobuf_Value__Output } from './google/protobuf/Value';
import type { Batch as _otari_batch_v1_Batch, Batch__Output as _otari_batch_v1_Batch__Output } from './otari/batch/v1/Batch';
import type { BatchError as _otari_batch_v1_BatchError, BatchError__Output as _otari_batch_v1_BatchError__Output } from './otari/batch/v1/BatchError';
import type { BatchPart as _otari_batch_v1_BatchPart, BatchPart__Output as _otari_batch_v1_BatchPart__Output } from './otari/batch/v1/BatchPart';
import type { InputTokensDetails as _otari_batch_v1_InputTokensDetails, InputTokensDetails__Output as _otari_batch_v1_InputTokensDetails__Output } from './otari/batch/v1/InputTokensDetails';
import type { OutputTokensDetails as _otari_batch_v1_OutputTokensDetails, OutputTokensDetails__Output as _otari_batch_v1_OutputTokensDetails__Output } from './otari/batch/v1/OutputTokensDetails';
import type { RequestCounts as _otari_batch_v1_RequestCounts, RequestCounts__Output as _otari_batch_v1_RequestCounts__Output } from './otari/batch/v1/RequestCounts';
import type { Usage as _otari_batch_v1_Usage, Usage__Output as _otari_batch_v1_Usage__Output } from './otari/batch/v1/Usage';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  google: {
    protobuf: {
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
        Batch: MessageTypeDefinition<_otari_batch_v1_Batch, _otari_batch_v1_Batch__Output>
        BatchError: MessageTypeDefinition<_otari_batch_v1_BatchError, _otari_batch_v1_BatchError__Output>
        BatchPart: MessageTypeDefinition<_otari_batch_v1_BatchPart, _otari_batch_v1_BatchPart__Output>
        BatchStatus: EnumTypeDefinition
        InputTokensDetails: MessageTypeDefinition<_otari_batch_v1_InputTokensDetails, _otari_batch_v1_InputTokensDetails__Output>
        OutputTokensDetails: MessageTypeDefinition<_otari_batch_v1_OutputTokensDetails, _otari_batch_v1_OutputTokensDetails__Output>
        RequestCounts: MessageTypeDefinition<_otari_batch_v1_RequestCounts, _otari_batch_v1_RequestCounts__Output>
        Usage: MessageTypeDefinition<_otari_batch_v1_Usage, _otari_batch_v1_Usage__Output>
      }
    }
  }
}

