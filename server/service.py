"""BatchService: thin handlers that read like the contract. No HTTP and no SQL here."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc import aio
from otari.batch.v1 import batch_pb2, batch_service_pb2, batch_service_pb2_grpc

from server import convert, validation
from server.auth import Credential, credential_from_metadata
from server.errors import FieldViolation, ServiceError, invalid_argument
from server.gateway import GatewayClient, UpstreamHTTPError
from server.rpc import OpenStreams, server_stream, unary

Context = aio.ServicerContext[Any, Any]

# A page of ListBatches may take this many gateway calls to fill (the gateway filters pages by owner after the
# provider call, so a short page is not the end).
MAX_LIST_CALLS_PER_PAGE = 5


class BatchService(batch_service_pb2_grpc.BatchServiceServicer):
    def __init__(self, *, gateway: GatewayClient, service_key: str | None) -> None:
        self.gateway = gateway
        self.service_key = service_key
        self.streams = OpenStreams()

    def _credential(self, context: Context) -> Credential:
        return credential_from_metadata(context.invocation_metadata(), service_key=self.service_key)

    @unary
    async def CreateBatch(
        self, request: batch_service_pb2.CreateBatchRequest, context: Context
    ) -> batch_service_pb2.CreateBatchResponse:
        validation.check_create(request)
        credential = self._credential(context)
        body = convert.create_body(request)
        data = await self.gateway.create_batch(credential.key, body, time_left=context.time_remaining())
        return batch_service_pb2.CreateBatchResponse(batch=convert.batch_from_json(data))

    @unary
    async def GetBatch(
        self, request: batch_service_pb2.GetBatchRequest, context: Context
    ) -> batch_service_pb2.GetBatchResponse:
        validation.check_batch_ref(request.batch_id, request.provider)
        credential = self._credential(context)
        batch = await self._get(credential, request.batch_id, request.provider, context)
        return batch_service_pb2.GetBatchResponse(batch=batch)

    @unary
    async def ListBatches(
        self, request: batch_service_pb2.ListBatchesRequest, context: Context
    ) -> batch_service_pb2.ListBatchesResponse:
        validation.check_list(request)
        credential = self._credential(context)
        size = validation.page_size(request.page_size)
        after = _decode_page_token(request.page_token, request.provider)
        batches: list[dict[str, Any]] = []
        exhausted = False
        for _ in range(MAX_LIST_CALLS_PER_PAGE):
            page = await self.gateway.list_batches(
                credential.key, request.provider, after=after, limit=size, time_left=context.time_remaining()
            )
            if not page:
                exhausted = True
                break
            batches.extend(page)
            after = page[-1]["id"]
            if len(batches) >= size:
                break
        if len(batches) > size:
            batches = batches[:size]
            after = batches[-1]["id"]
        token = "" if exhausted or after is None else _encode_page_token(after, request.provider)
        return batch_service_pb2.ListBatchesResponse(
            batches=[convert.batch_from_json(b) for b in batches], next_page_token=token
        )

    @unary
    async def CancelBatch(
        self, request: batch_service_pb2.CancelBatchRequest, context: Context
    ) -> batch_service_pb2.CancelBatchResponse:
        validation.check_batch_ref(request.batch_id, request.provider)
        credential = self._credential(context)
        try:
            data = await self.gateway.cancel_batch(
                credential.key, request.batch_id, request.provider, time_left=context.time_remaining()
            )
        except UpstreamHTTPError as exc:
            if exc.status != 502:
                raise
            # The gateway answers 502 for a cancel of a finished batch too: look before blaming the provider.
            batch = await self._get(credential, request.batch_id, request.provider, context)
            if batch.status in convert.TERMINAL_STATUSES:
                raise _already_finished(batch) from None
            raise
        return batch_service_pb2.CancelBatchResponse(batch=convert.batch_from_json(data))

    @server_stream
    async def StreamResults(
        self, request: batch_service_pb2.StreamResultsRequest, context: Context
    ) -> AsyncIterator[batch_service_pb2.StreamResultsResponse]:
        validation.check_batch_ref(request.batch_id, request.provider)
        credential = self._credential(context)
        try:
            items = await self.gateway.batch_results(
                credential.key, request.batch_id, request.provider, time_left=context.time_remaining()
            )
        except UpstreamHTTPError as exc:
            if exc.status != 409:
                raise
            batch = await self._get(credential, request.batch_id, request.provider, context)
            raise _results_not_ready(batch) from None
        if not items:
            batch = await self._get(credential, request.batch_id, request.provider, context)
            if batch.request_counts.total > 0:
                raise _results_missing(batch)
        for index, item in enumerate(items):
            yield batch_service_pb2.StreamResultsResponse(result=convert.result_from_json(item), index=index)

    async def _get(self, credential: Credential, batch_id: str, provider: str, context: Context) -> batch_pb2.Batch:
        data = await self.gateway.get_batch(credential.key, batch_id, provider, time_left=context.time_remaining())
        return convert.batch_from_json(data)


def _status_meta(batch: batch_pb2.Batch) -> dict[str, str]:
    return {"batch_id": batch.id, "status": batch.upstream_status or convert.status_name(batch.status)}


def _already_finished(batch: batch_pb2.Batch) -> ServiceError:
    status = _status_meta(batch)["status"]
    return ServiceError(
        grpc.StatusCode.FAILED_PRECONDITION,
        "BATCH_ALREADY_FINISHED",
        f"Batch {batch.id} is already {status}; only a batch that has not finished can be cancelled.",
        _status_meta(batch),
    )


def _results_not_ready(batch: batch_pb2.Batch) -> ServiceError:
    status = _status_meta(batch)["status"]
    if batch.status in convert.TERMINAL_STATUSES:
        message = (
            f"Batch {batch.id} is {status}: the gateway serves results only for completed batches, "
            "so this batch has none to stream (any partial output is not available through the gateway)."
        )
        reason = "BATCH_HAS_NO_RESULTS"
    else:
        message = (
            f"Batch {batch.id} is {status}: results can be streamed once it is completed. Poll GetBatch until then."
        )
        reason = "BATCH_NOT_COMPLETED"
    return ServiceError(grpc.StatusCode.FAILED_PRECONDITION, reason, message, _status_meta(batch))


def _results_missing(batch: batch_pb2.Batch) -> ServiceError:
    counts = batch.request_counts
    return ServiceError(
        grpc.StatusCode.FAILED_PRECONDITION,
        "RESULTS_MISSING",
        f"Batch {batch.id} is completed but the gateway returned no results for its {counts.total} requests "
        f"({counts.failed} failed). The gateway reads only the provider's output file, so requests that failed "
        "are not listed.",
        {**_status_meta(batch), "failed": str(counts.failed), "total": str(counts.total)},
    )


def _encode_page_token(after: str, provider: str) -> str:
    raw = json.dumps({"v": 1, "after": after, "provider": provider}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_page_token(token: str, provider: str) -> str | None:
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        after, token_provider = data["after"], data["provider"]
        if data.get("v") != 1 or not isinstance(after, str) or not isinstance(token_provider, str):
            raise ValueError("bad token")
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise invalid_argument(
            [FieldViolation("page_token", "is not a token this service issued; pass next_page_token as given")]
        ) from None
    if token_provider != provider:
        raise invalid_argument(
            [FieldViolation("page_token", f"was issued for provider {token_provider!r}, not {provider!r}")]
        )
    return after
