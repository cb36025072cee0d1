"""`python -m otari_batch_grpc.server` (`make run`): serve BatchService until SIGTERM or Ctrl-C.

Without GATEWAY_URL the built-in gateway simulator starts too, and the service proxies it. Logs are JSON lines on
stderr; traces follow the OTEL_* environment variables (see tracing.py); metrics listen on METRICS_ADDRESS if set.
"""

from __future__ import annotations

import os

# grpc-core writes lines of its own (not JSON) to stderr, such as a failed bind, which the service then reports in its
# own words. It reads this when it loads, so before any import of grpc. GRPC_VERBOSITY=ERROR (or DEBUG) brings its
# lines back, for debugging grpc itself.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import asyncio
import contextlib
import importlib.util
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable

from otari_batch_grpc.server import config
from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.server.store import StoreError
from otari_batch_grpc.server.telemetry import logs, tracing

log = logging.getLogger("otari_batch_grpc")


@contextlib.asynccontextmanager
async def _gateway(settings: config.Settings) -> AsyncIterator[str]:
    if settings.gateway_url:
        yield settings.gateway_url
        return
    from otari_batch_grpc.simulator.accounts import DEFAULT_API_KEYS, DEFAULT_MASTER_KEY
    from otari_batch_grpc.simulator.run import running_simulator  # the `simulator` extra: only when used
    from otari_batch_grpc.simulator.state import SimState

    host, port = settings.simulator_host_port
    # The simulator's batches live beside STATE_DB, so a restart keeps the two consistent.
    state = await SimState.open(
        stage_seconds=settings.simulator_stage_seconds, state_file=settings.state_db.with_suffix(".simulator.json")
    )
    async with running_simulator(state, host, port) as url:
        logs.adopt("uvicorn", "uvicorn.error", "uvicorn.access")  # its lines as JSON too
        log.info(
            "GATEWAY_URL is not set: using the built-in gateway simulator at %s (a development tool). Try API key %s.",
            url,
            next(iter(DEFAULT_API_KEYS)),
        )
        log.info("Simulator keys: %s; master key %s", ", ".join(DEFAULT_API_KEYS), DEFAULT_MASTER_KEY)
        yield url


# What the built-in simulator needs: the `simulator` extra.
SIMULATOR_MODULES = ("fastapi", "uvicorn")


def simulator_missing(settings: config.Settings) -> str | None:
    """Why the service cannot start as configured, when it would start the simulator and that is not installed."""
    if settings.gateway_url or all(importlib.util.find_spec(m) is not None for m in SIMULATOR_MODULES):
        return None
    return (
        "GATEWAY_URL is not set, and the built-in gateway simulator is not installed: set GATEWAY_URL to your otari "
        "gateway, or install the simulator extra (pip install './clients/python' '.[simulator]' from a checkout)"
    )


async def serve(settings: config.Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with _gateway(settings) as gateway_url:
        server = BatchServer(settings, gateway_url=gateway_url)
        port = await server.start()
        log.info(
            "otari-batch-grpc serving on %s (port %d), gateway %s%s",
            settings.grpc_listen,
            port,
            gateway_url,
            server.gateway.api_root,
        )
        if server.metrics is not None:
            log.info("Prometheus metrics on %s", server.metrics.url)
        await stop.wait()
        log.info("shutting down: health NOT_SERVING, ending streams, %.1fs grace", settings.shutdown_grace)
        await server.stop()
    log.info("stopped")


def main() -> None:
    logs.configure("INFO")  # every line JSON, a bad setting's too
    try:
        settings = config.load()
        logs.configure(settings.log_level)
        if (missing := simulator_missing(settings)) is not None:
            raise config.ConfigError(missing)
        provider = tracing.configure()
    except (config.ConfigError, tracing.TracingError) as exc:
        log.error("%s", exc)
        sys.exit(2)
    try:
        with asyncio.Runner(loop_factory=_loop_factory(settings.event_loop)) as runner:
            runner.run(serve(settings))
    except (OSError, StoreError) as exc:
        log.error("%s", exc)
        sys.exit(1)
    finally:
        if provider is not None:
            provider.shutdown()  # sends the spans still buffered


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None  # asyncio's own


if __name__ == "__main__":
    main()
