"""The server around the service: reflection (Python client and buf curl), health, graceful shutdown, the CLI."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from otari_batch_grpc.server.app import SERVICE_NAME, BatchServer
from otari_batch_grpc.simulator.run import running_simulator
from otari_batch_grpc.simulator.state import SimState
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import ALICE, MASTER, Sim, clean_env, connect, create_request, details, eventually, make_settings

ROOT = Path(__file__).resolve().parent.parent
BUF = Path(sys.executable).parent / "buf"

EVERY_MESSAGE = [
    "otari.batch.v1.Batch",
    "otari.batch.v1.BatchResult",
    "otari.batch.v1.ChatCompletion",
    "otari.batch.v1.CompletionTokensDetails",
    "otari.batch.v1.CreateBatchRequest",
    "otari.batch.v1.StreamResultsResponse",
    "otari.batch.v1.BatchEvent",
    "google.protobuf.Duration",
    "google.protobuf.Struct",
    "google.protobuf.Timestamp",
]


def _reflect(port: int) -> tuple[list[str], list[str], list[str]]:
    """Services, resolved message names and method names, through a reflection client (blocking: run in a thread)."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        pool = descriptor_pool.DescriptorPool(database)
        services = list(database.get_services())
        messages = [pool.FindMessageTypeByName(name).full_name for name in EVERY_MESSAGE]
        service = pool.FindServiceByName(SERVICE_NAME)
        methods = [m.name for m in service.methods]
        # Every field of every message BatchService uses resolves, down to the leaves.
        seen: set[str] = set()
        todo = [m.input_type for m in service.methods] + [m.output_type for m in service.methods]
        while todo:
            message = todo.pop()
            if message.full_name in seen:
                continue
            seen.add(message.full_name)
            todo.extend(f.message_type for f in message.fields if f.message_type is not None)
        messages.extend(sorted(seen))
        error_info = pool.FindMessageTypeByName("google.rpc.ErrorInfo").full_name
        return services, [*messages, error_info], methods


async def test_reflection_resolves_every_type(server: BatchServer) -> None:
    services, messages, methods = await asyncio.to_thread(_reflect, server.port)
    assert SERVICE_NAME in services and "grpc.health.v1.Health" in services
    assert set(EVERY_MESSAGE) <= set(messages)
    assert "google.rpc.ErrorInfo" in messages
    assert methods == [
        "CreateBatch",
        "UploadBatch",
        "GetBatch",
        "ListBatches",
        "CancelBatch",
        "StreamResults",
        "WatchBatch",
        "WatchBatches",
        "WaitBatch",
    ]


async def _buf(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        str(BUF), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.subprocess
async def test_buf_curl_calls_every_rpc_through_reflection(server: BatchServer, sim: Sim) -> None:
    base = f"http://127.0.0.1:{server.port}/{SERVICE_NAME}"
    auth = ["--protocol", "grpc", "--http2-prior-knowledge", "-H", "authorization: Bearer sim-key-alice"]
    create = {
        "model": "openai:gpt-4o-mini",
        "requests": [{"custom_id": "a", "body": {"messages": [{"role": "user", "content": "hi"}]}}],
    }
    code, out, err = await _buf("curl", *auth, "-d", json.dumps(create), f"{base}/CreateBatch")
    assert code == 0, err
    batch = json.loads(out)["batch"]
    assert batch["status"] == "BATCH_STATUS_VALIDATING"
    ref = json.dumps({"batchId": batch["id"], "provider": "openai"})
    for method in ("GetBatch", "CancelBatch"):
        code, out, err = await _buf("curl", *auth, "-d", ref, f"{base}/{method}")
        assert code == 0, err
        assert json.loads(out)["batch"]["id"] == batch["id"]
    code, out, err = await _buf("curl", *auth, "-d", '{"provider": "openai"}', f"{base}/ListBatches")
    assert code == 0, err
    assert [b["id"] for b in json.loads(out)["batches"]] == [batch["id"]]
    await sim.force(batch["id"], "completed")
    code, out, err = await _buf("curl", *auth, "-d", ref, f"{base}/StreamResults")
    assert code == 0, err
    chunk = json.loads(out)
    assert chunk["results"][0]["customId"] == "a" and chunk["totalCount"] == "1"
    # And an error comes back as a status with its details.
    code, out, err = await _buf("curl", *auth, "-d", '{"page_size": -1}', f"{base}/ListBatches")
    assert code != 0 and "invalid_argument" in err and "page_size" in err


@pytest.mark.subprocess
async def test_every_service_listed_can_be_described_by_buf_curl_and_grpcurl(server: BatchServer) -> None:
    """What a reflection client does first: list everything, then resolve each service's schema (v1, v1alpha)."""
    target = f"http://127.0.0.1:{server.port}"
    h2 = ("--protocol", "grpc", "--http2-prior-knowledge")
    for protocol in ("grpc-v1", "grpc-v1alpha"):
        code, out, err = await _buf("curl", *h2, "--reflect-protocol", protocol, "--list-methods", target)
        assert code == 0, err
        methods = set(out.split())
        assert f"{SERVICE_NAME}/CreateBatch" in methods and f"{SERVICE_NAME}/WaitBatch" in methods
        assert "grpc.health.v1.Health/Check" in methods
        assert "grpc.reflection.v1.ServerReflection/ServerReflectionInfo" in methods
        assert "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo" in methods
    process = await asyncio.create_subprocess_exec(
        str(GRPCURL), "-plaintext", f"127.0.0.1:{server.port}", "describe",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out_bytes, err_bytes = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err_bytes.decode()
    described = out_bytes.decode()
    for service in (SERVICE_NAME, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"):
        assert f"{service} is a service:" in described


def _health(channel: grpc.aio.Channel) -> Any:
    return health_pb2_grpc.HealthStub(channel)  # typed for sync channels only in types-grpcio-health-checking


async def test_health_serving_when_the_gateway_answers(server: BatchServer, channel: grpc.aio.Channel) -> None:
    health = _health(channel)
    for service in ("", SERVICE_NAME):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_health_follows_the_gateway(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    settings = make_settings(url, tmp_path, health_interval=0.05)
    async with (
        BatchServer(settings, gateway_url=url) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        health = _health(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
        statuses = [(await watch.read()).status]
        assert statuses == [health_pb2.HealthCheckResponse.NOT_SERVING]
        following = asyncio.ensure_future(watch.read())
        done, _ = await asyncio.wait({following}, timeout=0.5)
        assert not done  # probes go on failing: it stays NOT_SERVING (no SERVING in between)
        async with running_simulator(SimState(), port=port):
            statuses.append((await asyncio.wait_for(following, 10)).status)
        statuses.append((await asyncio.wait_for(watch.read(), 10)).status)
        watch.cancel()
    assert statuses == [
        health_pb2.HealthCheckResponse.NOT_SERVING,
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.NOT_SERVING,
    ]


async def test_shutdown_ends_open_streams_with_unavailable_and_finishes_unary_calls(sim: Sim, tmp_path: Path) -> None:
    server = BatchServer(make_settings(sim.url, tmp_path), gateway_url=sim.url)
    await server.start()
    async with connect(server.port) as stub, grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        batch = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
        await sim.force(batch.id, "completed")
        watch = _health(channel).Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        await sim.fault(op="results", delay=30.0, times=1)  # a stream that stays open
        stream = stub.StreamResults(pb.StreamResultsRequest(batch_id=batch.id, provider="openai"), metadata=ALICE)

        async def downloading() -> bool:
            return await sim.requests_seen("results") == 1

        await eventually(downloading)
        gets = await sim.requests_seen("get")
        await sim.fault(op="get", delay=0.5, times=1)  # a unary call in flight (another key: asks the gateway)
        unary = asyncio.ensure_future(
            stub.GetBatch(pb.GetBatchRequest(batch_id=batch.id, provider="openai"), metadata=MASTER)
        )

        async def both_in_flight() -> bool:
            return len(server.service.streams) == 1 and await sim.requests_seen("get") == gets + 1

        await eventually(both_in_flight)
        stopping = asyncio.ensure_future(server.stop())
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            [item async for item in stream]
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        found = details(caught.value)
        assert found.info is not None and found.info.reason == "SERVER_SHUTTING_DOWN"
        assert found.retry is not None
        assert (await unary).batch.id == batch.id  # finished within the grace period
        await stopping


async def _start_process(*args: str, state: Path, **settings: str) -> asyncio.subprocess.Process:
    """The service as a process with its own state and a clean environment (never the developer's)."""
    env = clean_env(state / "s.db", **settings)
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "otari_batch_grpc.server", *args,
        cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


@pytest.mark.subprocess
async def test_process_serves_the_simulator_by_default_and_stops_on_sigterm(tmp_path: Path) -> None:
    process = await _start_process(state=tmp_path, GRPC_LISTEN="127.0.0.1:0", SHUTDOWN_GRACE="1")
    try:
        assert process.stderr is not None
        lines: list[str] = []
        port = 0
        while not port:
            line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
            assert line, "the server exited: " + "".join(lines)
            lines.append(line)
            if match := re.search(r"serving on .* \(port (\d+)\)", line):
                port = int(match.group(1))
        assert any("built-in gateway simulator" in line for line in lines)
        async with connect(port) as stub:
            reply = await stub.CreateBatch(create_request(1), metadata=ALICE)
            assert reply.batch.id.startswith("batch_")
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        rest = (await process.stderr.read()).decode()
        assert "shutting down" in rest and "stopped" in rest
        assert "sim-key-alice" not in rest.split("Simulator keys")[-1]
        # The simulator's batches were kept beside STATE_DB: a restart keeps them and the service's state in step.
        kept = (tmp_path / "s.simulator.json").read_text()
        assert reply.batch.id in kept
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.subprocess
async def test_help_lists_every_setting_with_its_environment_variable(tmp_path: Path) -> None:
    process = await _start_process("--help", state=tmp_path)
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    text = out.decode()
    for name in (
        "GATEWAY_URL",
        "GRPC_LISTEN",
        "STATE_DB",
        "UPSTREAM_TIMEOUT",
        "MAX_MESSAGE_BYTES",
        "TLS_CERT",
        "TLS_CLIENT_CA",
        "LOG_LEVEL",
        "SERVICE_KEY",
    ):
        assert f"[{name}]" in text


@pytest.mark.subprocess
async def test_a_bad_setting_is_a_clear_startup_error(tmp_path: Path) -> None:
    process = await _start_process(state=tmp_path, GATEWAY_URL="ftp://nope", GRPC_LISTEN="127.0.0.1:0")
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert "GATEWAY_URL must start with http://" in err.decode()
    assert "Traceback" not in err.decode()


@pytest.mark.subprocess
async def test_stub_call_against_the_real_process_gateway_url(sim: Sim, tmp_path: Path) -> None:
    """GATEWAY_URL points the process at another gateway (here: a simulator the test runs)."""
    process = await _start_process(state=tmp_path, GRPC_LISTEN="127.0.0.1:0", GATEWAY_URL=sim.url)
    try:
        assert process.stderr is not None
        port = 0
        while not port:
            line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
            assert line
            assert "built-in gateway simulator" not in line
            if match := re.search(r"\(port (\d+)\)", line):
                port = int(match.group(1))
        async with connect(port) as stub:
            batch = (await stub.CreateBatch(create_request(1), metadata=ALICE)).batch
        assert batch.id in sim.state.batches
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
async def test_reflection_v1_and_v1alpha_serve_the_contract_with_its_comments(
    server: BatchServer, version: str
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call = channel.stream_stream(
            f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        requests = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE_NAME),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="google.rpc.ErrorInfo"),
        ]
        listed, service_file, error_file = [response async for response in call(iter(requests))]
    names = {s.name for s in listed.list_services_response.service}
    assert {SERVICE_NAME, "grpc.health.v1.Health", f"grpc.reflection.{version}.ServerReflection"} <= names
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(b)
        for b in service_file.file_descriptor_response.file_descriptor_proto
    ]
    contract = next(f for f in files if f.name == "otari/batch/v1/batch_service.proto")
    comments = [loc.leading_comments for loc in contract.source_code_info.location]
    assert any("Creates a batch." in c for c in comments), "grpcurl describe would show no documentation"
    assert contract.options.go_package and contract.options.java_package
    errors = [
        descriptor_pb2.FileDescriptorProto.FromString(b)
        for b in error_file.file_descriptor_response.file_descriptor_proto
    ]
    assert "google/rpc/error_details.proto" in {f.name for f in errors}


GRPCURL = Path(sys.executable).parent / "grpcurl"


@pytest.mark.subprocess
async def test_the_readmes_grpcurl_lines_work(server: BatchServer) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("With grpcurl")[1].split("```sh")
    block = section[1].split("```")[0] + section[2].split("```")[0]  # the calls, then the one that fails
    lines = [line for line in block.splitlines() if line.startswith("grpcurl ")]
    assert len(lines) == 5
    outputs = []
    for line in lines:
        args = shlex.split(line.replace("127.0.0.1:50051", f"127.0.0.1:{server.port}"))[1:]
        process = await asyncio.create_subprocess_exec(
            str(GRPCURL), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        outputs.append(out.decode() + err.decode())
        assert (process.returncode == 0) == (line != lines[-1]), (line, err.decode())
    listed, described, batches, health, error = outputs
    assert "Code: InvalidArgument" in error
    assert "google.rpc.ErrorInfo" in error and "google.rpc.BadRequest" in error and '"page_size"' in error
    assert SERVICE_NAME in listed and "grpc.reflection.v1.ServerReflection" in listed
    assert "// A batch as the gateway reports it." in described  # the .proto comments come through
    assert json.loads(batches) == {}  # a new caller has none (an empty message prints as {})
    assert json.loads(health) == {"status": "SERVING"}
