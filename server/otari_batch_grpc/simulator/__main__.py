"""`python -m otari_batch_grpc.simulator`: the gateway simulator on its own (a development and test tool)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path

from otari_batch_grpc.simulator.accounts import DEFAULT_API_KEYS, DEFAULT_MASTER_KEY
from otari_batch_grpc.simulator.run import running_simulator
from otari_batch_grpc.simulator.state import API_ROOTS, SimState
from otari_batch_grpc.simulator.state_file import StateFileError


async def _main(state: SimState, host: str, port: int) -> None:
    async with running_simulator(state, host, port) as url:
        keys = ", ".join(DEFAULT_API_KEYS)
        kept = f"; batches kept in {state.state_file}" if state.state_file else ""
        print(
            f"otari gateway simulator at {url} (batch routes under {state.api_root}; "
            f"API keys: {keys}; master key: {DEFAULT_MASTER_KEY}{kept})",
            flush=True,
        )
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="otari-batch-simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--stage-seconds", type=float, default=5.0)
    parser.add_argument(
        "--state-file",
        type=Path,
        default=None,
        help="JSON file the batches are kept in across restarts (loaded at start, written after every change)",
    )
    parser.add_argument(
        "--api-root",
        choices=API_ROOTS,
        default="/v1",
        help="root of the batch routes: /v1 (self-hosted gateway) or /api/v1 (otari platform)",
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds every batch route takes (a real gateway's ~0.05)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=0, help="batch requests served at once, the rest wait (0: no cap)"
    )
    args = parser.parse_args()
    try:
        state = SimState(
            stage_seconds=args.stage_seconds,
            state_file=args.state_file,
            api_root=args.api_root,
            latency=args.latency,
            concurrency=args.concurrency,
        )
    except StateFileError as exc:
        print(f"otari-batch-simulator: {exc}", file=sys.stderr)
        sys.exit(1)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(state, args.host, args.port))


if __name__ == "__main__":
    main()
