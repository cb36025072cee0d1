"""Operating it: JSON log lines (one object a line, nothing before it, never a key), Prometheus metrics scraped from
a running server's own listener, and OpenTelemetry traces running from the caller's traceparent through the
server span to the gateway request, read from an in-memory exporter."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from httpx_aiohttp import AiohttpTransport
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from otari_batch_grpc.server.app import SERVICE_NAME, BatchServer
from otari_batch_grpc.server.domain.errors import Code, ServiceError
from otari_batch_grpc.server.gateway.transport import GatewayTransport, route_of
from otari_batch_grpc.server.telemetry import logs, metrics, tracing
from otari_batch_grpc.server.telemetry.logs import Fields, JsonFormatter
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from otari_batch_grpc.v1 import watch_pb2
from tests.conftest import ALICE, Sim, clean_env, connect, create_request, eventually, make_settings

ROOT = Path(__file__).resolve().parent.parent
ALICE_TAG = hashlib.sha256(b"sim-key-alice").hexdigest()[:8]
REQUEST_ID = "6f1c1f0e-3b1a-4c55-9d43-0f5a8e2d7c11"


# -- logs ---------------------------------------------------------------------------------------------------------
@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the service logs, through the formatter the process uses."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("otari_batch_grpc")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _parsed(line: str) -> dict[str, Any]:
    assert line.startswith("{"), f"something before the JSON: {line!r}"
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def _lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [_parsed(line) for line in out.getvalue().splitlines()]


def _rpc(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("event") == "rpc"]


async def test_each_call_logs_one_json_line_with_what_correlates_it(
    sim: Sim, tmp_path: Path, json_log: io.StringIO
) -> None:
    async with (
        BatchServer(make_settings(sim.url, tmp_path), gateway_url=sim.url) as server,
        connect(server.port) as stub,
    ):
        created = await stub.CreateBatch(create_request(1, request_id=REQUEST_ID), metadata=ALICE)
        batch_id = created.batch.id
        await stub.GetBatch(pb.GetBatchRequest(batch_id=batch_id), metadata=ALICE)
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.GetBatch(pb.GetBatchRequest(batch_id=batch_id), metadata=(("x-api-key", "wrong-key-123"),))
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.GetBatch(pb.GetBatchRequest(batch_id=batch_id))  # no key at all
    text = json_log.getvalue()
    create, get, wrong, anonymous = _rpc(_lines(json_log))
    assert create["method"] == "CreateBatch" and create["code"] == "OK"
    assert create["request_id"] == REQUEST_ID and create["batch_id"] == batch_id  # the id from the reply
    assert create["upstream_status"] == 200
    assert get["method"] == "GetBatch" and get["batch_id"] == batch_id and get["owner"] == ALICE_TAG
    for line in (create, get):
        assert line["level"] == "INFO" and line["logger"] == "otari_batch_grpc.rpc" and line["time"].endswith("Z")
        assert isinstance(line["duration_ms"], float) and line["peer"].startswith("ipv4:127.0.0.1:")
        assert "trace_id" not in line  # tracing is off
    assert wrong["code"] != "OK" and wrong["owner"] == hashlib.sha256(b"wrong-key-123").hexdigest()[:8]
    assert anonymous["code"] == "UNAUTHENTICATED" and "owner" not in anonymous
    for key in ("sim-key-alice", "wrong-key-123"):
        assert key not in text


async def test_a_call_past_its_deadline_is_logged_as_deadline_exceeded(
    sim: Sim, tmp_path: Path, json_log: io.StringIO
) -> None:
    async with (
        BatchServer(make_settings(sim.url, tmp_path), gateway_url=sim.url) as server,
        connect(server.port) as stub,
    ):
        batch_id = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch.id
        await sim.fault(op="get", delay=5.0, times=1)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetBatch(pb.GetBatchRequest(batch_id=batch_id), metadata=ALICE, timeout=0.3)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

        async def logged() -> bool:
            return len(_rpc(_lines(json_log))) == 2

        await eventually(logged)
    _, get = _rpc(_lines(json_log))
    assert get["method"] == "GetBatch" and get["code"] == "DEADLINE_EXCEEDED"
    # The caller's deadline ended it, not the gateway: WARNING, whether the service answered first or grpc ended it.
    assert get["reason"] in ("CALL_DEADLINE_PASSED", "CLIENT_DEADLINE_PASSED") and get["level"] == "WARNING"


async def test_a_failed_call_says_why_and_how_loud(sim: Sim, tmp_path: Path, json_log: io.StringIO) -> None:
    """The ErrorInfo reason and the first bad field's path (never its value) on the line; WARNING for what the
    caller can fix, ERROR for what is the service's or the gateway's."""
    secret_value = "do-not-log-this-value"
    async with (
        BatchServer(make_settings(sim.url, tmp_path), gateway_url=sim.url) as server,
        connect(server.port) as stub,
    ):
        batch_id = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch.id
        get = pb.GetBatchRequest(batch_id=batch_id)
        with pytest.raises(grpc.aio.AioRpcError):  # a reserved metadata key
            await stub.CreateBatch(create_request(1, metadata={"otari_user_id": secret_value}), metadata=ALICE)
        with pytest.raises(grpc.aio.AioRpcError):  # no key at all
            await stub.GetBatch(get)
        with pytest.raises(grpc.aio.AioRpcError):  # a key the gateway does not take
            await stub.GetBatch(get, metadata=(("x-api-key", "wrong-key-123"),))
        await sim.fault(op="get", status=500, detail="boom", times=1)
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.GetBatch(get, metadata=ALICE)
    created, reserved, missing, wrong, broken = _rpc(_lines(json_log))
    assert created["level"] == "INFO" and "reason" not in created and "field" not in created
    assert (reserved["level"], reserved["code"], reserved["reason"]) == (
        "WARNING",
        "INVALID_ARGUMENT",
        "INVALID_REQUEST",
    )
    assert reserved["field"] == "metadata[otari_user_id]"
    assert (missing["level"], missing["reason"]) == ("WARNING", "MISSING_CREDENTIAL")
    assert (wrong["level"], wrong["reason"]) == ("WARNING", "GATEWAY_UNAUTHENTICATED")
    assert (broken["level"], broken["code"], broken["reason"]) == ("ERROR", "INTERNAL", "GATEWAY_INTERNAL_ERROR")
    assert secret_value not in json_log.getvalue()


async def test_a_stream_its_client_cancels_says_so_at_info(sim: Sim, tmp_path: Path, json_log: io.StringIO) -> None:
    async with (
        BatchServer(make_settings(sim.url, tmp_path), gateway_url=sim.url) as server,
        connect(server.port) as stub,
    ):
        batch_id = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch.id
        call = stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch_id), metadata=ALICE)
        await call.read()  # the snapshot
        call.cancel()

        async def logged() -> bool:
            return any(line["method"] == "WatchBatch" for line in _rpc(_lines(json_log)))

        await eventually(logged)
    watch = next(line for line in _rpc(_lines(json_log)) if line["method"] == "WatchBatch")
    assert (watch["code"], watch["reason"], watch["level"]) == ("CANCELLED", "CLIENT_CANCELLED", "INFO")


def test_an_exception_is_a_field_of_its_one_line() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("otari_batch_grpc.test")
    logger.addHandler(handler)
    try:
        try:
            raise ValueError("bad\nthing")
        except ValueError:
            logger.exception("it failed: %s", "here")
        logger.warning(Fields(event="x", count=2, level="not this"))  # the line's own keys are not overwritten
    finally:
        logger.removeHandler(handler)
    first, second = out.getvalue().splitlines()
    line = json.loads(first)
    assert line["message"] == "it failed: here" and line["level"] == "ERROR"
    assert "Traceback" in line["exception"] and "ValueError: bad\nthing" in line["exception"]
    assert json.loads(second) == {**json.loads(second), "event": "x", "count": 2, "level": "WARNING"}
    assert "message" not in json.loads(second)
    assert str(Fields(a=1)) == '{"a": 1}'


def test_configure_replaces_the_root_handlers() -> None:
    root = logging.getLogger()
    saved, level, hook = list(root.handlers), root.level, sys.excepthook
    out = io.StringIO()
    try:
        logs.configure("warning", stream=out)
        logging.getLogger("otari_batch_grpc.x").warning("one %d", 1)
        logging.getLogger("otari_batch_grpc.x").info("not at this level")
        try:
            raise RuntimeError("boom")
        except RuntimeError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
        lines = _lines(out)
        assert [line["message"] for line in lines] == ["one 1", "uncaught exception"]
        assert "RuntimeError: boom" in lines[1]["exception"]
    finally:
        root.handlers[:] = saved
        root.setLevel(level)
        sys.excepthook = hook
        logging.captureWarnings(False)


async def _process(tmp_path: Path, **settings: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "otari_batch_grpc.server",
        cwd=ROOT, env=clean_env(tmp_path / "s.db", **{"GRPC_LISTEN": "127.0.0.1:0", "SHUTDOWN_GRACE": "1", **settings}),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


@pytest.mark.subprocess
async def test_the_process_writes_only_json_lines_and_serves_metrics_and_traces(tmp_path: Path) -> None:
    """The real process: every stderr line (the simulator's too) is a JSON object; the metrics listener answers;
    OTEL_TRACES_EXPORTER=console turns traces on, and the caller's trace id reaches the exported spans."""
    process = await _process(tmp_path, METRICS_ADDRESS="127.0.0.1:0", OTEL_TRACES_EXPORTER="console")
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    try:
        assert process.stderr is not None and process.stdout is not None
        lines: list[dict[str, Any]] = []
        port, metrics_url = 0, ""
        while not (port and metrics_url):
            raw = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
            assert raw, "the server exited: " + json.dumps(lines)
            lines.append(_parsed(raw))
            if match := re.search(r"\(port (\d+)\)", lines[-1].get("message", "")):
                port = int(match.group(1))
            if match := re.search(r"metrics on (http://\S+)", lines[-1].get("message", "")):
                metrics_url = match.group(1)
        async with connect(port) as stub:
            traced = (*ALICE, ("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01"))
            await stub.CreateBatch(create_request(1), metadata=traced)
        async with httpx.AsyncClient() as http:
            scraped = (await http.get(metrics_url)).text
        assert 'otari_batch_grpc_rpcs_total{code="OK",method="CreateBatch"} 1.0' in scraped
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        rest = (await process.stderr.read()).decode()
        lines += [_parsed(line) for line in rest.splitlines()]
        spans = (await process.stdout.read()).decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert all(line.keys() >= {"time", "level", "logger"} for line in lines)
    (call,) = _rpc(lines)
    assert call["owner"] == ALICE_TAG and call["trace_id"] == trace_id
    assert "sim-key-alice" not in json.dumps(call)
    assert f'"trace_id": "0x{trace_id}"' in spans and '"service.name": "otari-batch-grpc"' in spans


# -- metrics ------------------------------------------------------------------------------------------------------
class Scrape:
    def __init__(self, text: str) -> None:
        self.families = {family.name: family for family in text_string_to_metric_families(text)}
        self.samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in self.families.values()
            for sample in family.samples
        }

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)


async def _scrape(server: BatchServer) -> Scrape:
    assert server.metrics is not None
    async with httpx.AsyncClient() as http:
        response = await http.get(server.metrics.url)
    assert response.status_code == 200
    return Scrape(response.text)


@pytest.fixture
async def metered(sim: Sim, tmp_path: Path) -> AsyncIterator[BatchServer]:
    settings = make_settings(sim.url, tmp_path, metrics_address="127.0.0.1:0", watch_poll_min=0.05)
    async with BatchServer(settings, gateway_url=sim.url) as server:
        yield server


async def test_metrics_count_calls_gateway_requests_and_open_streams(metered: BatchServer, sim: Sim) -> None:
    before = await _scrape(metered)
    async with connect(metered.port) as stub:
        batch = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
        await stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id), metadata=ALICE)
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.GetBatch(pb.GetBatchRequest(batch_id="batch_nope", provider="openai"), metadata=ALICE)
        watch: Any = stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch.id), metadata=ALICE)
        first = await watch.read()
        assert first is not grpc.aio.EOF and first.event.kind == watch_pb2.BATCH_EVENT_KIND_SNAPSHOT
        during = await _scrape(metered)
        watch.cancel()
    after = await _scrape(metered)

    def grew(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert grew("otari_batch_grpc_rpcs_total", method="CreateBatch", code="OK") == 1
    assert grew("otari_batch_grpc_rpcs_total", method="GetBatch", code="OK") == 1
    assert grew("otari_batch_grpc_rpcs_total", method="GetBatch", code="NOT_FOUND") == 1
    assert grew("otari_batch_grpc_rpc_duration_seconds_count", method="GetBatch") == 2
    assert grew("otari_batch_grpc_rpc_duration_seconds_bucket", method="GetBatch", le="+Inf") == 2
    assert grew("otari_batch_grpc_gateway_requests_total", route="POST /v1/batches", status="200") == 1
    gets = [v for (name, labels), v in after.samples.items() if ("route", "GET /v1/batches/{id}") in labels]
    assert (
        sum(gets)
        - sum(  # the GetBatch that worked and the one that did not (the simulator answers 502 for it)
            v for (name, labels), v in before.samples.items() if ("route", "GET /v1/batches/{id}") in labels
        )
        >= 2
    )
    assert grew("otari_batch_grpc_gateway_request_duration_seconds_count", route="POST /v1/batches") == 1
    assert during.value("otari_batch_grpc_open_streams") - before.value("otari_batch_grpc_open_streams") == 1
    assert during.value("otari_batch_grpc_watch_poll_loops") == 1
    assert after.value("otari_batch_grpc_open_streams") == before.value("otari_batch_grpc_open_streams")
    # Defined for the parts that count them (limits, the results cache, the store), and the process's own.
    for name in (
        "otari_batch_grpc_limit_rejections",
        "otari_batch_grpc_results_cache_hits",
        "otari_batch_grpc_results_cache_misses",
        "otari_batch_grpc_results_cache_bytes",
        "otari_batch_grpc_watch_subscriptions",
        "otari_batch_grpc_watch_polls",
        "otari_batch_grpc_store_transaction_seconds",
        "process_resident_memory_bytes",
    ):
        assert name in after.families, name


async def test_a_gateway_request_that_gets_no_answer_counts_under_its_error(tmp_path: Path) -> None:
    transport = GatewayTransport(max_connections=1)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:1") as http:
        before = Scrape(_text())
        with pytest.raises(httpx.ConnectError):
            await http.get("/v1/batches/batch_abc/results", params={"provider": "openai"})
    after = Scrape(_text())
    labels = {"route": "GET /v1/batches/{id}/results", "status": "ConnectError"}
    assert (
        after.value("otari_batch_grpc_gateway_requests_total", **labels)
        - before.value("otari_batch_grpc_gateway_requests_total", **labels)
        == 1
    )


def _text() -> str:
    from prometheus_client import generate_latest

    return generate_latest().decode()


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("GET", "/v1/batches", "GET /v1/batches"),
        ("GET", "/api/v1/batches/batch_1", "GET /api/v1/batches/{id}"),
        ("POST", "/v1/batches/batch_1/cancel", "POST /v1/batches/{id}/cancel"),
        ("GET", "/v1/batches/b%2F..%2Fx/results", "GET /v1/batches/{id}/results"),
        ("GET", "/v1/batches/anything/else/at/all", "GET /v1/batches/{id}/{id}/{id}/{id}"),
    ],
)
def test_routes_name_ids_as_placeholders(method: str, path: str, route: str) -> None:
    assert route_of(method, path) == route


async def test_the_listener_is_off_by_default_and_stops_with_the_server(sim: Sim, tmp_path: Path) -> None:
    async with BatchServer(make_settings(sim.url, tmp_path), gateway_url=sim.url) as plain:
        assert plain.metrics is None
    settings = make_settings(sim.url, tmp_path, metrics_address="127.0.0.1:0")
    async with BatchServer(settings, gateway_url=sim.url) as server:
        assert server.metrics is not None
        url = server.metrics.url
        await _scrape(server)
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(url)


async def test_a_metrics_address_in_use_is_a_clear_startup_error(
    metered: BatchServer, sim: Sim, tmp_path: Path
) -> None:
    assert metered.metrics is not None
    taken = f"127.0.0.1:{metered.metrics.port}"
    settings = make_settings(sim.url, tmp_path / "other", metrics_address=taken)
    with pytest.raises(OSError, match=f"cannot listen on {taken} for metrics"):
        await BatchServer(settings, gateway_url=sim.url).start()


# -- traces -------------------------------------------------------------------------------------------------------
@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    try:
        yield exporter
    finally:
        tracing.disable()
        provider.shutdown()


@pytest.fixture
def sent_headers(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Headers]:
    """The headers of each request as it leaves for the gateway (under GatewayTransport, which adds traceparent)."""
    seen: list[httpx.Headers] = []
    send = AiohttpTransport.handle_async_request

    async def recording(self: AiohttpTransport, request: httpx.Request) -> httpx.Response:
        seen.append(httpx.Headers(request.headers))
        return await send(self, request)

    monkeypatch.setattr(AiohttpTransport, "handle_async_request", recording)
    return seen


def _one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    (span,) = [s for s in spans if s.name == name]
    return span


async def test_one_trace_runs_from_the_caller_through_the_service_to_the_gateway(
    spans: InMemorySpanExporter, sent_headers: list[httpx.Headers], sim: Sim, tmp_path: Path, json_log: io.StringIO
) -> None:
    trace_id, caller_span = 0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7
    traceparent = f"00-{trace_id:032x}-{caller_span:016x}-01"
    async with (
        BatchServer(make_settings(sim.url, tmp_path), gateway_url=sim.url) as server,
        connect(server.port) as stub,
    ):
        batch = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
        spans.clear()
        sent_headers.clear()
        await stub.GetBatch(
            pb.GetBatchRequest(batch_id=batch.id, provider="openai"), metadata=(*ALICE, ("traceparent", traceparent))
        )
    finished = spans.get_finished_spans()
    server_span = _one(finished, f"{SERVICE_NAME}/GetBatch")
    client_span = _one(finished, "GET /v1/batches/{id}")
    # The server span continues the caller's trace; the gateway request is its child.
    assert server_span.kind == trace.SpanKind.SERVER and client_span.kind == trace.SpanKind.CLIENT
    assert server_span.context is not None and client_span.context is not None
    assert server_span.context.trace_id == trace_id == client_span.context.trace_id
    assert server_span.parent is not None and server_span.parent.span_id == caller_span
    assert client_span.parent is not None and client_span.parent.span_id == server_span.context.span_id
    assert server_span.attributes is not None and server_span.attributes["rpc.grpc.status_code"] == 0
    assert client_span.attributes is not None and client_span.attributes["http.response.status_code"] == 200
    # The gateway got the client span's context as traceparent.
    (headers,) = sent_headers
    assert headers["traceparent"] == f"00-{trace_id:032x}-{client_span.context.span_id:016x}-01"
    # And the call's log line names the trace.
    get_line = [line for line in _rpc(_lines(json_log)) if line["method"] == "GetBatch"][-1]
    assert get_line["trace_id"] == f"{trace_id:032x}"


async def test_a_call_without_traceparent_starts_a_trace_and_errors_mark_the_span(
    spans: InMemorySpanExporter, sim: Sim, tmp_path: Path
) -> None:
    async with (
        BatchServer(make_settings(sim.url, tmp_path), gateway_url=sim.url) as server,
        connect(server.port) as stub,
    ):
        await sim.fault(op="get", status=503, times=10)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetBatch(pb.GetBatchRequest(batch_id="batch_x", provider="openai"), metadata=ALICE)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    finished = spans.get_finished_spans()
    server_span = _one(finished, f"{SERVICE_NAME}/GetBatch")
    assert server_span.parent is None
    assert server_span.status.status_code == trace.StatusCode.ERROR
    # The probes at start and the health checks are no one's call: no spans of their own.
    assert not [s for s in finished if s.name.startswith("OPTIONS")]
    for span in finished:
        assert span.context is not None and server_span.context is not None
        assert span.context.trace_id == server_span.context.trace_id


async def test_without_tracing_nothing_is_sent_or_made(sent_headers: list[httpx.Headers], stub: Any) -> None:
    assert tracing.tracer is None
    await stub.ListBatches(pb.ListBatchesRequest(provider="openai"), metadata=ALICE)
    assert sent_headers and not [h for h in sent_headers if "traceparent" in h]


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console,otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_tracing_is_on_only_when_the_otel_settings_ask(environ: dict[str, str], on: bool) -> None:
    assert tracing.wanted(environ) is on
    if not on:
        assert tracing.configure(environ) is None and tracing.tracer is None


def test_tracing_configuration_errors_are_clear() -> None:
    with pytest.raises(tracing.TracingError, match="no span exporter named 'zipkin'"):
        tracing.configure({"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(tracing.TracingError, match="OTEL_EXPORTER_OTLP_PROTOCOL must be"):
        tracing.configure({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"})
    assert tracing.tracer is None


def test_traces_asked_for_without_the_tracing_extra_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.resources", None)  # as if the SDK were not installed
    with pytest.raises(tracing.TracingError, match=r"pip install 'otari-batch-grpc\[tracing\]'"):
        tracing.configure({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"})
    assert tracing.tracer is None


def test_tracing_configures_the_otlp_exporter_from_the_environment() -> None:
    provider = tracing.configure({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"})
    try:
        assert provider is not None and tracing.tracer is not None
        assert provider.resource.attributes["service.name"] == "otari-batch-grpc"
    finally:
        tracing.disable()
        if provider is not None:
            provider.shutdown()


async def test_counted_polls_count_each_poll_by_its_outcome() -> None:
    async def poll(batch_id: str) -> str:
        if batch_id == "gone":
            raise ServiceError(Code.NOT_FOUND, "BATCH_NOT_FOUND", "gone")
        return batch_id

    counted = metrics.counted_polls(poll)
    before = Scrape(_text())
    assert await counted("b1") == "b1"
    with pytest.raises(ServiceError):
        await counted("gone")
    after = Scrape(_text())
    for outcome in ("ok", "NOT_FOUND"):
        grew = after.value("otari_batch_grpc_watch_polls_total", outcome=outcome)
        assert grew - before.value("otari_batch_grpc_watch_polls_total", outcome=outcome) == 1


@pytest.mark.subprocess
async def test_a_start_that_fails_writes_json_lines_only(tmp_path: Path) -> None:
    """A second server on a busy port (grpc-core's own bind error silenced, nothing left "unclosed"), and a bad
    setting: each says what is wrong in a JSON line, and nothing else reaches stderr."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        second = await _process(tmp_path, GRPC_LISTEN=f"127.0.0.1:{port}")
        _, err = await asyncio.wait_for(second.communicate(), 60)
    assert second.returncode == 1
    lines = [_parsed(line) for line in err.decode().splitlines()]
    assert [line["message"] for line in lines if line["level"] == "ERROR"] == [
        f"cannot listen on 127.0.0.1:{port}: is another process using it?"
    ]
    bad = await _process(tmp_path, WATCH_POLL_MIN="soon")
    _, err = await asyncio.wait_for(bad.communicate(), 60)
    assert bad.returncode == 2
    assert [_parsed(line)["message"] for line in err.decode().splitlines()] == [
        "watch_poll_min must be a number, got 'soon'"
    ]
