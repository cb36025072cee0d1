"""Fixtures: a real gateway simulator on loopback HTTP, a real gRPC server proxying it, a real gRPC client."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import random
import socket
import ssl
import subprocess
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import httpx
import pytest
from aiohttp import web
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2, status_pb2

from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.server.config import Settings
from otari_batch_grpc.server.domain.callers import Caller
from otari_batch_grpc.server.domain.tokens import CallerTokens
from otari_batch_grpc.simulator.run import running_simulator
from otari_batch_grpc.simulator.state import SimState
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from otari_batch_grpc.v1 import batch_service_pb2_grpc

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

# One TLS context for the tests' HTTP clients (each client would load the CA bundle anew, ~20 ms; they speak plain
# HTTP to loopback anyway).
TLS = ssl.create_default_context()


def http_client(**settings: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=TLS, **settings)


ALICE = (("authorization", "Bearer sim-key-alice"),)
BOB = (("authorization", "Bearer sim-key-bob"),)
MASTER = (("authorization", "Bearer sim-master-key"),)


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 10.0) -> None:
    """Wait until `check()` holds, polling; fail after `within` seconds (a bound, not a timing goal)."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.01)


# -- tiers -----------------------------------------------------------------------------------------------------
# `make test` runs every test; `make test-fast` those marked neither postgres nor subprocess (pyproject.toml lists
# the markers). A test that needs PostgreSQL asks for `postgres_url` and is marked by that; a test that starts a
# process says so with @pytest.mark.subprocess, and one that does not and starts one anyway fails at once (below),
# so the fast tier never starts a process whatever a new test does.
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "postgres_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
        if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            item.add_marker(pytest.mark.fuzz)


@pytest.fixture(autouse=True)
def _processes_only_where_marked(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("subprocess") is not None:
        return

    def refused(*_args: object, **_kwargs: object) -> Any:
        raise AssertionError(f"{request.node.nodeid} starts a process: mark it @pytest.mark.subprocess")

    monkeypatch.setattr(asyncio, "create_subprocess_exec", refused)
    monkeypatch.setattr(subprocess, "Popen", refused)


@dataclass
class Sim:
    """The gateway simulator as a test sees it: its URL, its state, and its control routes over HTTP."""

    url: str
    state: SimState
    http: httpx.AsyncClient

    async def fault(self, **spec: Any) -> None:
        (await self.http.post("/_simulator/faults", json=spec)).raise_for_status()

    async def force(self, batch_id: str, status: str) -> None:
        (await self.http.post(f"/_simulator/batches/{batch_id}/status", json={"status": status})).raise_for_status()

    async def set_stage_seconds(self, seconds: float) -> None:
        (await self.http.post("/_simulator/clock", json={"stage_seconds": seconds})).raise_for_status()

    async def pace(self, latency: float, concurrency: int = 0) -> None:
        """Every batch route takes `latency` seconds, at most `concurrency` at once (0: no cap)."""
        spec = {"latency": latency, "concurrency": concurrency}
        (await self.http.post("/_simulator/pace", json=spec)).raise_for_status()

    async def requests_seen(self, op: str | None = None) -> int:
        stats = (await self.http.get("/_simulator/stats")).json()
        counts: dict[str, int] = stats["requests"]
        return sum(counts.values()) if op is None else counts.get(op, 0)

    async def disconnects(self) -> int:
        return int((await self.http.get("/_simulator/stats")).json()["disconnects"])

    async def refuse_budget(self, status: int = 403, *, user: str = "*", detail: str | None = None) -> None:
        """Creates by `user` ("*": anyone) answer `status` (402 or 403) with the real gateway's detail."""
        spec: dict[str, Any] = {"user": user, "status": status}
        if detail is not None:
            spec["detail"] = detail
        (await self.http.post("/_simulator/budget", json=spec)).raise_for_status()

    async def clear_budget(self, user: str | None = None) -> None:
        params = {"user": user} if user is not None else {}
        (await self.http.delete("/_simulator/budget", params=params)).raise_for_status()

    # -- keys and users, through the gateway's own management routes (the master key) --------------------------
    async def new_key(self, user: str) -> tuple[str, str]:
        """A new key of `user` (made if unknown): (its id, the key)."""
        made = await self.http.post(f"{self.state.api_root}/keys", json={"user_id": user}, headers=dict(MASTER))
        made.raise_for_status()
        return str(made.json()["id"]), str(made.json()["key"])

    async def set_key_active(self, key_id: str, active: bool) -> None:
        """Deactivate (or reactivate) a key: the gateway then answers it 401 "API key is inactive"."""
        path = f"{self.state.api_root}/keys/{key_id}"
        (await self.http.patch(path, json={"is_active": active}, headers=dict(MASTER))).raise_for_status()

    async def block_user(self, user: str, blocked: bool = True) -> None:
        """A blocked user's reads are served; its creates answer 403 "User '...' is blocked"."""
        path = f"{self.state.api_root}/users/{user}"
        (await self.http.patch(path, json={"blocked": blocked}, headers=dict(MASTER))).raise_for_status()

    async def delete_user(self, user: str) -> None:
        """Its keys answer 401 "API key is inactive" from now on."""
        (await self.http.delete(f"{self.state.api_root}/users/{user}", headers=dict(MASTER))).raise_for_status()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module with `BOTH_API_ROOTS = True` runs each of its tests against a gateway on /v1 and one on /api/v1
    (the service finds which at start: GATEWAY_API_ROOT=auto)."""
    if "api_root" in metafunc.fixturenames and getattr(metafunc.module, "BOTH_API_ROOTS", False):
        metafunc.parametrize("api_root", ["/v1", "/api/v1"], indirect=True)


@pytest.fixture
def api_root(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "/v1"))


@pytest.fixture
async def sim(api_root: str) -> AsyncIterator[Sim]:
    # Batches stay in `validating` unless a test moves the clock or forces a status.
    state = SimState(stage_seconds=3600, api_root=api_root)
    async with running_simulator(state) as url, http_client(base_url=url) as http:
        yield Sim(url=url, state=state, http=http)


# Watches that see changes within a tenth of a second: for tests of the watch hub.
FAST = {"watch_poll_min": 0.03, "watch_poll_max": 0.1, "watch_heartbeat": 30.0}


@pytest.fixture
async def fast(sim: Sim, tmp_path: Path) -> AsyncIterator[BatchServer]:
    async with BatchServer(make_settings(sim.url, tmp_path, **FAST), gateway_url=sim.url) as running:
        yield running


@pytest.fixture
async def wstub(fast: BatchServer) -> AsyncIterator[Stub]:
    async with connect(fast.port) as stub:
        yield stub


def port_to_bind_later() -> int:
    """A free loopback port for a server a test starts (and restarts) on a port chosen beforehand. It lies below the
    kernel's ephemeral range, so no outgoing connection is given it meanwhile (a port from bind(0) can be: CI once
    lost a replica's restart to one)."""
    low = 20_000
    with contextlib.suppress(OSError, ValueError, IndexError):
        low = min(low, int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0]) - 2_000)
    for _ in range(200):
        port = random.randrange(max(1024, low - 8_000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def clean_env(state_db: Path, **settings: str) -> dict[str, str]:
    """The whole environment of a process a test starts: its own state, and nothing of the developer's (a
    GATEWAY_URL or STATE_DB exported in the shell must not reach it)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(state_db.parent),
        "STATE_DB": str(state_db),
        **settings,
    }


def make_settings(gateway_url: str, state_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "gateway_url": gateway_url,
        "grpc_listen": "127.0.0.1:0",
        "state_db": state_dir / "state.db",
        "upstream_timeout": 5.0,
        "shutdown_grace": 2.0,
        **overrides,
    }
    return Settings(**values)


def peek(server: BatchServer, key: str = "sim-key-alice") -> CallerTokens:
    """The tokens `server` seals for the caller with `key`: tests may look inside them (callers cannot)."""
    return server.service.core.tokens_for(Caller(key, server.service.owners.owner_of_key(key)))


@pytest.fixture
async def server(sim: Sim, tmp_path: Path) -> AsyncIterator[BatchServer]:
    async with BatchServer(make_settings(sim.url, tmp_path), gateway_url=sim.url) as running:
        yield running


@pytest.fixture
async def channel(server: BatchServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


@contextlib.asynccontextmanager
async def connect(port: int) -> AsyncIterator[Stub]:
    """A BatchService client on a fresh channel to a server started by the test itself."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        yield batch_service_pb2_grpc.BatchServiceStub(ch)


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> Stub:
    return batch_service_pb2_grpc.BatchServiceStub(channel)


def body(content: str = "hello", **extra: Any) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update({"messages": [{"role": "user", "content": content}], "max_tokens": 16, **extra})
    return struct


def create_request(n: int = 2, **fields: Any) -> pb.CreateBatchRequest:
    requests = [pb.BatchRequestItem(custom_id=f"req-{i}", body=body(f"question {i}")) for i in range(n)]
    values: dict[str, Any] = {"model": "openai:gpt-4o-mini", "requests": requests, **fields}
    return pb.CreateBatchRequest(**values)


@dataclass
class Details:
    """The google.rpc details of a failed call."""

    info: error_details_pb2.ErrorInfo | None
    bad_request: error_details_pb2.BadRequest | None
    retry: error_details_pb2.RetryInfo | None
    count: int

    @property
    def fields(self) -> list[str]:
        return [v.field for v in self.bad_request.field_violations] if self.bad_request else []


def details(error: grpc.aio.AioRpcError) -> Details:
    raw = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin")
    assert isinstance(raw, bytes), "the error carries no google.rpc.Status details"
    status = status_pb2.Status.FromString(raw)
    assert status.code == error.code().value[0]
    found: dict[str, Any] = {}
    for packed in status.details:
        for kind in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest, error_details_pb2.RetryInfo):
            if packed.Is(kind.DESCRIPTOR):
                message = kind()
                packed.Unpack(message)
                found[kind.DESCRIPTOR.name] = message
    return Details(found.get("ErrorInfo"), found.get("BadRequest"), found.get("RetryInfo"), len(status.details))


# -- PostgreSQL: a database of each test's own -------------------------------------------------------------------
# The server to create test databases on (any database of it: the tests make their own and drop them).
POSTGRES_ADMIN_URL = os.environ.get("TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"


def _postgres_admin(*statements: str) -> None:
    """Statements on the admin connection, run from a thread of their own (whatever event loop is running)."""
    import asyncpg  # the tests that need PostgreSQL only

    async def run() -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        thread.submit(lambda: asyncio.run(run())).result()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of a fresh PostgreSQL database, dropped after the test. No PostgreSQL at TEST_DATABASE_URL fails
    the test, unless OTARI_SKIP_POSTGRES=1 says to skip (never in CI)."""
    name = f"otari_test_{uuid.uuid4().hex[:16]}"
    try:
        _postgres_admin(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        from otari_batch_grpc.server.store.postgres import redacted

        reason = f"no PostgreSQL to test against at {redacted(POSTGRES_ADMIN_URL)} (TEST_DATABASE_URL): {exc!r}"
        if os.environ.get("OTARI_SKIP_POSTGRES") == "1" and not os.environ.get("CI"):
            pytest.skip(reason)
        pytest.fail(f"{reason}. Point TEST_DATABASE_URL at one, or set OTARI_SKIP_POSTGRES=1 (not in CI).")
    try:
        yield urllib.parse.urlsplit(POSTGRES_ADMIN_URL)._replace(path=f"/{name}").geturl()
    finally:
        _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- a webhook receiver (#32) -----------------------------------------------------------------------------------
class Receiver:
    """An HTTP receiver on loopback: what it got, and what it answers (`answer`, changed by each test)."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, str], bytes]] = []
        self.answer: Callable[[web.Request], Awaitable[web.StreamResponse]] = self._no_content
        self.url = ""
        self.connections: Callable[[], int] = lambda: 0  # connections open to it now

    async def _no_content(self, _request: web.Request) -> web.StreamResponse:
        return web.Response(status=204)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.got.append((request.path, dict(request.headers), await request.read()))
        return await self.answer(request)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver on loopback: what it got, and what it answers (`answer`, 204 unless a test says)."""
    receiving = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receiving.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    receiving.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks/otari?token=s3cret"
    server = runner.server
    assert server is not None
    receiving.connections = lambda: len(server.connections)
    try:
        yield receiving
    finally:
        await runner.cleanup()
