"""The gateway client's reading of the gateway's answers, without a server: httpx.MockTransport plays the gateway.

Each answer the gateway can give (a status, a body, headers, no answer at all) and the typed exception, or value, the
client makes of it. The same answers through the real simulator and on to gRPC codes: test_upstream_errors.py.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from aiohttp import web

from otari_batch_grpc.server.gateway.client import GatewayClient
from otari_batch_grpc.server.gateway.errors import (
    KeyRefused,
    NotCompleted,
    ProviderFailed,
    UpstreamBadResponse,
    UpstreamHTTPError,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from otari_batch_grpc.server.gateway.results_document import ResultsParser, plain

Handler = Callable[[httpx.Request], httpx.Response]
BATCH = {"id": "batch_1", "object": "batch", "status": "in_progress", "provider": "openai"}


class Gateway:
    """A MockTransport that answers with `handler` and keeps every request it was sent."""

    def __init__(self, handler: Handler) -> None:
        self.requests: list[httpx.Request] = []
        self._handler = handler
        self.transport = httpx.MockTransport(self._answer)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._handler(request)


Make = Callable[..., tuple[GatewayClient, Gateway]]  # a client on a MockTransport answering with a handler


def answer(status: int, body: Any = None, *, headers: dict[str, str] | None = None, text: str | None = None) -> Handler:
    def handler(_request: httpx.Request) -> httpx.Response:
        if text is not None:
            return httpx.Response(status, text=text, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return handler


@pytest.fixture
async def client_for() -> AsyncIterator[Make]:
    clients: list[GatewayClient] = []

    def make(handler: Handler, **options: Any) -> tuple[GatewayClient, Gateway]:
        gateway = Gateway(handler)
        client = GatewayClient(
            "http://gateway.test", timeout=5, results_timeout=5, transport=gateway.transport, **options
        )
        clients.append(client)
        return client, gateway

    yield make
    for client in clients:
        await client.aclose()


# (status, the exception it becomes): the answers that mean something particular have a type of their own.
STATUS_TABLE = [
    (400, UpstreamHTTPError),
    (401, KeyRefused),
    (403, UpstreamHTTPError),
    (404, UpstreamHTTPError),
    (409, NotCompleted),
    (422, UpstreamHTTPError),
    (429, UpstreamHTTPError),
    (500, UpstreamHTTPError),
    (502, ProviderFailed),
    (503, UpstreamHTTPError),
    (504, UpstreamHTTPError),
]


@pytest.mark.parametrize(("status", "kind"), STATUS_TABLE, ids=[str(s) for s, _ in STATUS_TABLE])
async def test_each_error_status_becomes_the_exception_that_says_what_it_means(
    client_for: Make, status: int, kind: type[UpstreamHTTPError]
) -> None:
    client, _ = client_for(answer(status, {"detail": f"said with {status}"}))
    with pytest.raises(UpstreamHTTPError) as caught:
        await client.get_batch("sk-a", "batch_1", "openai", time_left=None)
    assert type(caught.value) is kind
    assert caught.value.status == status
    assert caught.value.detail_text == f"said with {status}"
    assert caught.value.operation == "get"
    assert caught.value.batch_id == "batch_1"
    assert caught.value.refused == (400 <= status < 500 or status in (502, 503))


async def test_a_field_list_detail_becomes_field_errors(
    client_for: Make,
) -> None:
    detail = [
        {"loc": ["body", "requests", 0, "custom_id"], "msg": "Field required", "type": "missing"},
        {"loc": ["body", "model"], "msg": "String should match pattern", "type": "string_pattern_mismatch"},
    ]
    client, _ = client_for(answer(422, {"detail": detail}))
    with pytest.raises(UpstreamHTTPError) as caught:
        await client.create_batch("sk-a", b"{}", time_left=None)
    assert caught.value.field_errors == [
        (["body", "requests", 0, "custom_id"], "Field required"),
        (["body", "model"], "String should match pattern"),
    ]
    assert caught.value.detail_text == (
        "body.requests.0.custom_id: Field required; body.model: String should match pattern"
    )


async def test_an_error_body_that_is_not_json_is_kept_as_text_cut_to_200_characters(
    client_for: Make,
) -> None:
    client, _ = client_for(answer(500, text="  " + "x" * 500 + "  "))
    with pytest.raises(UpstreamHTTPError) as caught:
        await client.get_batch("sk-a", "batch_1", "openai", time_left=None)
    assert caught.value.detail == "x" * 200

    client, _ = client_for(answer(503, text=""))
    with pytest.raises(UpstreamHTTPError) as caught:
        await client.get_batch("sk-a", "batch_1", "openai", time_left=None)
    assert caught.value.detail is None
    assert caught.value.detail_text == "(no detail)"


async def test_retry_after_is_read_as_seconds_or_as_an_http_date(
    client_for: Make,
) -> None:
    soon = email.utils.formatdate(time.time() + 30, usegmt=True)
    cases: list[tuple[str, float | None, float]] = [
        ("7", 7, 7),
        ("-3", 0, 0),
        (soon, 25, 31),
        ("tomorrow-ish", None, 0),
    ]
    for header, low, high in cases:
        client, _ = client_for(answer(429, {"detail": "slow down"}, headers={"retry-after": header}))
        with pytest.raises(UpstreamHTTPError) as caught:
            await client.list_batches("sk-a", "openai", after=None, limit=10, time_left=None)
        if low is None:
            assert caught.value.retry_after is None, header
        else:
            assert caught.value.retry_after is not None and low <= caught.value.retry_after <= high, header


async def test_the_gateways_error_code_and_attempt_id_are_kept(
    client_for: Make,
) -> None:
    headers = {"otari-error-code": "budget_exceeded", "otari-attempt-id": "att_42"}
    client, _ = client_for(answer(403, {"detail": "Budget exceeded"}, headers=headers))
    with pytest.raises(UpstreamHTTPError) as caught:
        await client.create_batch("sk-a", b"{}", time_left=None)
    assert (caught.value.error_code, caught.value.attempt_id) == ("budget_exceeded", "att_42")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<html>ok</html>", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"id": 7, "status": "completed"}', "not a batch object"),
        (b'{"object": "batch"}', "not a batch object"),
    ],
)
async def test_a_200_that_is_not_a_batch_is_a_bad_response(client_for: Make, body: bytes, problem: str) -> None:
    client, _ = client_for(lambda _r: httpx.Response(200, content=body))
    with pytest.raises(UpstreamBadResponse) as caught:
        await client.cancel_batch("sk-a", "batch_1", "openai", time_left=None)
    assert caught.value.status == 200
    assert caught.value.problem.startswith(problem)


@pytest.mark.parametrize("data", [None, "batches", [{"object": "batch"}], [BATCH, 3]])
async def test_a_list_whose_data_is_not_batches_is_a_bad_response(client_for: Make, data: object) -> None:
    client, _ = client_for(answer(200, {"object": "list", "data": data}))
    with pytest.raises(UpstreamBadResponse, match="'data' is not a list of batches"):
        await client.list_batches("sk-a", "openai", after=None, limit=10, time_left=None)


async def test_no_answer_is_unreachable_and_a_slow_one_a_timeout(
    client_for: Make,
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def stall(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client, _ = client_for(refuse)
    with pytest.raises(UpstreamUnreachable) as unreachable:
        await client.get_batch("sk-a", "batch_1", "openai", time_left=None)
    assert unreachable.value.cause == "ConnectError"

    client, _ = client_for(stall)
    with pytest.raises(UpstreamTimeout) as slow:
        await client.get_batch("sk-a", "batch_1", "openai", time_left=2.0)
    assert 1.9 < slow.value.timeout <= 2.0  # the caller's deadline, shorter than the client's 5 s


async def test_a_call_with_no_time_left_is_not_sent(client_for: Make) -> None:
    client, gateway = client_for(answer(200, BATCH))
    with pytest.raises(UpstreamTimeout):
        await client.get_batch("sk-a", "batch_1", "openai", time_left=0)
    assert gateway.requests == []


async def test_the_callers_deadline_becomes_the_requests_timeout(
    client_for: Make,
) -> None:
    client, gateway = client_for(answer(200, BATCH))
    await client.get_batch("sk-a", "batch_1", "openai", time_left=1.5)
    await client.get_batch("sk-a", "batch_1", "openai", time_left=None)
    timeouts = [request.extensions["timeout"]["read"] for request in gateway.requests]
    assert timeouts[0] is not None and 1.4 < timeouts[0] <= 1.5
    assert timeouts[1] == 5


async def test_the_key_is_the_bearer_token_or_with_a_platform_token_the_otari_key(
    client_for: Make,
) -> None:
    client, gateway = client_for(answer(200, BATCH))
    await client.get_batch("sk-a", "batch_1", "openai", time_left=None)
    assert gateway.requests[-1].headers["authorization"] == "Bearer sk-a"
    assert "otari-key" not in gateway.requests[-1].headers

    client, gateway = client_for(answer(200, BATCH), platform_token="tk-platform")
    await client.get_batch("sk-a", "batch_1", "openai", time_left=None)
    assert gateway.requests[-1].headers["authorization"] == "Bearer tk-platform"
    assert gateway.requests[-1].headers["otari-key"] == "Bearer sk-a"


async def test_a_cookie_one_callers_answer_sets_never_rides_on_another_callers_request(client_for: Make) -> None:
    client, gateway = client_for(answer(200, BATCH, headers={"set-cookie": "session=alices; Path=/"}))
    await client.get_batch("sk-alice", "batch_1", "openai", time_left=None)
    await client.get_batch("sk-bob", "batch_1", "openai", time_left=None)
    assert [request.headers.get("cookie") for request in gateway.requests] == [None, None]


async def test_no_cookie_jar_under_the_client_either_on_a_real_connection() -> None:
    """(aiohttp, under httpx, keeps a jar of its own: none there either.)"""
    cookies: list[str | None] = []

    async def batch(request: web.Request) -> web.StreamResponse:
        cookies.append(request.headers.get("cookie"))
        response = web.json_response(BATCH)
        response.set_cookie("session", "alices")
        return response

    app = web.Application()
    app.router.add_get("/v1/batches/{id}", batch)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    client = GatewayClient(f"http://localhost:{runner.addresses[0][1]}", timeout=5, results_timeout=5)
    try:
        await client.get_batch("sk-alice", "batch_1", "openai", time_left=None)
        await client.get_batch("sk-bob", "batch_1", "openai", time_left=None)
    finally:
        await client.aclose()
        await runner.cleanup()
    assert cookies == [None, None]


async def test_routes_queries_and_bodies_are_the_gateways(
    client_for: Make,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/batches" and request.method == "GET":
            return httpx.Response(200, json={"object": "list", "data": [BATCH]})
        return httpx.Response(200, json=BATCH)

    client, gateway = client_for(handler, api_root="/api/v1")
    await client.create_batch("sk-a", b'{"model": "openai:gpt-4o-mini"}', time_left=None)
    await client.get_batch("sk-a", "batch/../1", "openai", time_left=None)
    await client.cancel_batch("sk-a", "batch_1", "mistral", time_left=None)
    assert await client.list_batches("sk-a", "openai", after="batch_0", limit=20, time_left=None) == [BATCH]
    create, get, cancel, listing = gateway.requests
    assert (create.method, create.url.path, create.headers["content-type"]) == (
        "POST",
        "/api/v1/batches",
        "application/json",
    )
    assert json.loads(create.content) == {"model": "openai:gpt-4o-mini"}
    assert get.url.raw_path == b"/api/v1/batches/batch%2F..%2F1?provider=openai"  # an id is one path segment
    assert (cancel.method, cancel.url.path, cancel.url.params["provider"]) == (
        "POST",
        "/api/v1/batches/batch_1/cancel",
        "mistral",
    )
    assert dict(listing.url.params) == {"provider": "openai", "limit": "20", "after": "batch_0"}


@pytest.mark.parametrize(("status", "takes"), [(422, True), (400, True), (401, False), (500, False)])
async def test_check_key_takes_the_gateways_word_on_a_key(client_for: Make, status: int, takes: bool) -> None:
    client, gateway = client_for(answer(status, {"detail": "provider: Field required"}))
    if takes:
        await client.check_key("sk-a", time_left=None)
    else:
        with pytest.raises(UpstreamHTTPError) as caught:
            await client.check_key("sk-a", time_left=None)
        assert caught.value.status == status
    assert gateway.requests[0].url.params.get("provider") is None  # no provider touched


async def test_every_answer_to_a_key_is_witnessed(client_for: Make) -> None:
    statuses = iter([200, 401, 500])
    client, _ = client_for(lambda _r: httpx.Response(next(statuses), json=BATCH))
    seen: list[tuple[str, int, float]] = []
    client.witness(lambda key, status, sent: seen.append((key, status, sent)))
    before = time.time()
    await client.get_batch("sk-a", "batch_1", "openai", time_left=None)
    for _ in range(2):
        with pytest.raises(UpstreamHTTPError):
            await client.get_batch("sk-b", "batch_1", "openai", time_left=None)
    assert [(key, status) for key, status, _ in seen] == [("sk-a", 200), ("sk-b", 401), ("sk-b", 500)]
    assert all(before <= sent <= time.time() for _, _, sent in seen)


def _results_document(count: int) -> bytes:
    items = [{"custom_id": f"r{i}", "result": {"id": f"c{i}"}, "error": None} for i in range(count)]
    return json.dumps({"results": items}, separators=(",", ":")).encode()


async def test_results_arrive_item_by_item_from_a_streamed_body(
    client_for: Make,
) -> None:
    document = _results_document(50)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(document), 97):
            yield document[start : start + 97]

    client, gateway = client_for(lambda _r: httpx.Response(200, content=chunks()))
    async with client.stream_results(
        "sk-a", "batch_1", "openai", ResultsParser(plain, lambda item: item), time_left=None
    ) as items:
        ids = [item["custom_id"] async for item in items]
    assert ids == [f"r{i}" for i in range(50)]
    assert gateway.requests[0].url.path == "/v1/batches/batch_1/results"


@pytest.mark.parametrize(
    ("answered", "kind"),
    [
        (httpx.Response(409, json={"detail": "Batch is not complete"}), NotCompleted),
        (httpx.Response(200, content=b'{"results": [{"custom_id": "a"'), UpstreamBadResponse),
        (httpx.Response(200, content=b'{"results": 3}'), UpstreamBadResponse),
        (httpx.Response(200, content=b'{"results": [{"custom_id": "\xff"}]}'), UpstreamBadResponse),
    ],
    ids=["409", "cut-short", "not-a-list", "not-utf8"],
)
async def test_results_that_cannot_be_read_are_typed_failures(
    client_for: Make, answered: httpx.Response, kind: type[Exception]
) -> None:
    client, _ = client_for(lambda _r: answered)
    with pytest.raises(kind):
        async with client.stream_results(
            "sk-a", "batch_1", "openai", ResultsParser(plain, lambda item: item), time_left=None
        ) as items:
            async for _ in items:
                pass


@pytest.mark.parametrize(
    ("answers", "root"),
    [({"/api/v1/batches": 405}, "/api/v1"), ({"/v1/batches": 405}, "/v1"), ({}, None)],
    ids=["platform", "self-hosted", "neither"],
)
async def test_the_api_root_is_the_first_that_serves_the_batch_routes(
    client_for: Make, answers: dict[str, int], root: str | None
) -> None:
    client, gateway = client_for(lambda request: httpx.Response(answers.get(request.url.path, 404)))
    assert await client.find_api_root(within=1) == root
    assert all(request.method == "OPTIONS" for request in gateway.requests)


@pytest.mark.parametrize(("status", "up"), [(405, True), (200, True), (404, False), (500, False), (503, False)])
async def test_ping_counts_a_gateway_up_when_it_serves_the_batch_routes(
    client_for: Make, status: int, up: bool
) -> None:
    client, _ = client_for(lambda _r: httpx.Response(status))
    assert await client.ping(within=1) is up
