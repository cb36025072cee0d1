"""Run the gateway simulator inside the current event loop, on a loopback port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Generator

import uvicorn

from otari_batch_grpc.simulator.app import create_app
from otari_batch_grpc.simulator.state import SimState


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the process that embeds it owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


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
        server.should_exit = True
        await task


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
