"""`python -m otari_batch_grpc.simulator`: the gateway simulator on its own (a development and test tool)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from otari_batch_grpc.simulator.run import running_simulator
from otari_batch_grpc.simulator.state import DEFAULT_API_KEYS, DEFAULT_MASTER_KEY, SimState


async def _main(host: str, port: int, stage_seconds: float) -> None:
    async with running_simulator(SimState(stage_seconds=stage_seconds), host, port) as url:
        keys = ", ".join(DEFAULT_API_KEYS)
        print(
            f"otari gateway simulator at {url} (API keys: {keys}; master key: {DEFAULT_MASTER_KEY})",
            flush=True,
        )
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="otari-batch-simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--stage-seconds", type=float, default=5.0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.host, args.port, args.stage_seconds))


if __name__ == "__main__":
    main()
