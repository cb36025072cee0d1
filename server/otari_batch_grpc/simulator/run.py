"""Run the gateway simulator inside the current event loop, on a loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Generator

import uvicorn

from otari_batch_grpc.simulator.app import create_app
from otari_batch_grpc.simulator.state import SimState


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers (the process that embeds it owns SIGTERM and SIGINT), that stops as soon
    as it is told to: uvicorn's own loop looks every tenth of a second, then gives connections a fixed tenth more,
    which a test suite that starts a simulator per test paid hundreds of times."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._stopping = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    def stop(self) -> None:
        self.should_exit = True
        self._stopping.set()

    async def main_loop(self) -> None:
        tick = 0
        while not await self.on_tick(tick):  # (it keeps the Date header fresh, once a second)
            tick = (tick + 1) % 864_000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 0.1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's, without its fixed waits: no new connection, idle ones closed, busy ones given the time their
        answer takes (up to `timeout_graceful_shutdown`)."""
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.timeout_graceful_shutdown):
                while self.server_state.connections or self.server_state.tasks:  # noqa: ASYNC110 (uvicorn's sets)
                    await asyncio.sleep(0.005)
        for task in self.server_state.tasks:
            task.cancel()
        for server in self.servers:
            await server.wait_closed()


@contextlib.asynccontextmanager
async def running_simulator(state: SimState, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve the simulator while the block runs; yields its base URL."""
    config = uvicorn.Config(
        create_app(state), host=host, port=port, log_level="warning", lifespan="off", access_log=False
    )
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # re-raises why it could not start
            raise RuntimeError("the gateway simulator stopped before it started")
        await asyncio.sleep(0.005)
    bound_host, bound_port = server.servers[0].sockets[0].getsockname()[:2]
    try:
        yield f"http://{_url_host(bound_host)}:{bound_port}"
    finally:
        server.stop()
        await task


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
