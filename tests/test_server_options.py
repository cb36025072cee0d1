"""The server's connection options for running behind a load balancer: streams per connection, keepalive, and a
maximum connection age (with a grace for open streams), through real channels on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from otari_batch_grpc.server.app import BatchServer, server_options
from otari_batch_grpc.server.config import ConfigError, Settings, load
from otari_batch_grpc.v1 import batch_pb2, batch_service_pb2_grpc, watch_pb2
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import ALICE, FAST, Sim, create_request, make_settings

READY, IDLE = grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.IDLE
# A connection lives 300 ms (+-10% jitter), then its open calls get the grace.
SHORT_AGE = {"grpc_max_connection_age": 0.3, "grpc_max_connection_age_grace": 0.2}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GRPC_MAX_CONCURRENT_STREAMS": "0"}, "grpc_max_concurrent_streams must be at least 1"),
        ({"GRPC_MAX_CONCURRENT_STREAMS": "many"}, "grpc_max_concurrent_streams must be a number"),
        ({"GRPC_KEEPALIVE_TIME": "0"}, "grpc_keepalive_time must be greater than 0"),
        ({"GRPC_KEEPALIVE_TIMEOUT": "-1"}, "grpc_keepalive_timeout must be greater than 0"),
        ({"GRPC_MIN_PING_INTERVAL": "0"}, "grpc_min_ping_interval must be greater than 0"),
        ({"GRPC_MAX_PING_STRIKES": "-1"}, "grpc_max_ping_strikes must be 0 or more"),
        ({"GRPC_MAX_CONNECTION_AGE": "-5"}, "grpc_max_connection_age must be 0 or more"),
        ({"GRPC_MAX_CONNECTION_AGE_GRACE": "-0.1"}, "grpc_max_connection_age_grace must be 0 or more"),
    ],
)
def test_bad_connection_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load([], env)


def test_help_describes_the_connection_settings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        load(["--help"], {})
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert "[GRPC_MAX_CONNECTION_AGE] (default: 1800.0)" in " ".join(text.split())


def test_settings_become_grpc_options() -> None:
    settings = load(["--grpc-max-connection-age", "60"], {"GRPC_MAX_CONCURRENT_STREAMS": "50"})
    options = dict(server_options(settings))
    assert options["grpc.max_concurrent_streams"] == 50
    assert options["grpc.max_connection_age_ms"] == 60_000
    assert options["grpc.max_connection_age_grace_ms"] == 300_000
    assert options["grpc.keepalive_time_ms"] == 30_000
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert options["grpc.http2.min_ping_interval_without_data_ms"] == 10_000
    # A burst of calls (subscribers reconnecting after a deploy) waits to be taken up, as many as may be open at
    # once: past grpc core's defaults (1,000, then refusals at random up to 3,000) they ended CANCELLED (#20).
    assert options["grpc.server.max_pending_requests"] == settings.limit_streams_total
    assert options["grpc.server.max_pending_requests_hard_limit"] > settings.limit_streams_total
    # Age 0: no limit, so neither option is passed (grpc's own default is no limit).
    unlimited = dict(server_options(Settings(grpc_max_connection_age=0)))
    assert "grpc.max_connection_age_ms" not in unlimited
    assert "grpc.max_connection_age_grace_ms" not in unlimited


class Peers:
    """The client address of each call, from the server's per-call log line: a new port is a new connection."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        caplog.set_level(logging.INFO, logger="otari_batch_grpc.rpc")

    def __call__(self) -> list[str]:
        lines = [json.loads(r.getMessage()) for r in self.caplog.records if r.name == "otari_batch_grpc.rpc"]
        return [line["peer"] for line in lines if line.get("event") == "rpc"]


@pytest.fixture
def peers(caplog: pytest.LogCaptureFixture) -> Peers:
    return Peers(caplog)


@contextlib.asynccontextmanager
async def _serving(sim: Sim, tmp_path: Path, **overrides: Any) -> AsyncIterator[grpc.aio.Channel]:
    """A server with these settings, and a channel to it (no transparent retries: each call is one attempt)."""
    settings = make_settings(sim.url, tmp_path, **FAST, **overrides)
    async with (
        BatchServer(settings, gateway_url=sim.url) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{server.port}", options=[("grpc.enable_retries", 0)]) as channel,
    ):
        yield channel


async def _list(channel: grpc.aio.Channel) -> None:
    await batch_service_pb2_grpc.BatchServiceStub(channel).ListBatches(pb.ListBatchesRequest(), metadata=ALICE)


async def _next(call: Any) -> watch_pb2.BatchEvent:
    response = await call.read()
    assert response is not grpc.aio.EOF, "the stream ended"
    event: watch_pb2.BatchEvent = response.event
    return event


async def _left_ready(channel: grpc.aio.Channel, within: float) -> bool:
    """Whether the channel's connection goes away (READY to anything else) within `within` seconds."""
    assert channel.get_state() == READY
    try:
        await asyncio.wait_for(channel.wait_for_state_change(READY), within)
    except TimeoutError:
        return False
    return True


async def test_an_aged_idle_connection_is_closed_and_the_client_reconnects(
    sim: Sim, tmp_path: Path, peers: Peers
) -> None:
    async with _serving(sim, tmp_path, **SHORT_AGE) as channel:
        await _list(channel)
        assert await _left_ready(channel, within=3.0)  # GOAWAY after ~300 ms, no call open: closed at once
        assert channel.get_state() == IDLE
        await _list(channel)  # the channel connects again by itself
        first, second = peers()
        assert first != second, "the second call came over the same connection"


async def test_without_an_age_limit_the_connection_stays(sim: Sim, tmp_path: Path, peers: Peers) -> None:
    """The control of the test above: the same wait, no age limit, one connection throughout."""
    async with _serving(sim, tmp_path, grpc_max_connection_age=0) as channel:
        await _list(channel)
        assert not await _left_ready(channel, within=0.8)
        await _list(channel)
        first, second = peers()
        assert first == second


async def test_a_stream_open_when_the_connection_ages_finishes_within_the_grace(sim: Sim, tmp_path: Path) -> None:
    async with _serving(sim, tmp_path, grpc_max_connection_age=0.3, grpc_max_connection_age_grace=3) as channel:
        stub = batch_service_pb2_grpc.BatchServiceStub(channel)
        batch = (await stub.CreateBatch(create_request(2), metadata=ALICE)).batch
        call = stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch.id), metadata=ALICE)
        await _next(call)  # the snapshot
        assert await _left_ready(channel, within=3.0)  # the server's GOAWAY: no new calls on this connection
        await sim.force(batch.id, "completed")
        assert (await _next(call)).batch.status == batch_pb2.BATCH_STATUS_COMPLETED
        assert await call.read() is grpc.aio.EOF
        assert await call.code() == grpc.StatusCode.OK
        await _list(channel)  # and a new connection serves what comes next


async def test_a_stream_still_open_after_the_grace_ends_unavailable_and_resumes(sim: Sim, tmp_path: Path) -> None:
    async with _serving(sim, tmp_path, **SHORT_AGE) as channel:
        stub = batch_service_pb2_grpc.BatchServiceStub(channel)
        batch = (await stub.CreateBatch(create_request(2), metadata=ALICE)).batch
        call = stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch.id), metadata=ALICE)
        snapshot = await _next(call)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await asyncio.wait_for(call.read(), 3.0)  # nothing changes: the grace runs out
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        await sim.force(batch.id, "completed")
        resumed = stub.WatchBatch(
            pb.WatchBatchRequest(batch_id=batch.id, resume_token=snapshot.resume_token), metadata=ALICE
        )
        while (event := await _next(resumed)).kind == watch_pb2.BATCH_EVENT_KIND_HEARTBEAT:
            pass  # resumed where it was: nothing new until the next poll sees the change
        assert event.batch.status == batch_pb2.BATCH_STATUS_COMPLETED


@pytest.mark.parametrize(("min_interval", "dropped"), [(0.5, False), (5.0, True)])
async def test_a_client_that_pings_while_idle_is_kept_unless_it_pings_too_often(
    sim: Sim, tmp_path: Path, peers: Peers, min_interval: float, dropped: bool
) -> None:
    """A client pinging its idle connection every second (grpc clients ping at most that often): the server keeps
    it when the pings are far enough apart, and with one strike allowed closes it at the third ping otherwise."""
    options = [
        ("grpc.keepalive_time_ms", 1000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),  # keep pinging though no call is open
    ]
    settings = make_settings(sim.url, tmp_path, grpc_min_ping_interval=min_interval, grpc_max_ping_strikes=1)
    async with (
        BatchServer(settings, gateway_url=sim.url) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{server.port}", options=options) as channel,
    ):
        await _list(channel)
        assert await _left_ready(channel, within=2.8) == dropped
        await _list(channel)
        first, second = peers()
        assert (first != second) == dropped
