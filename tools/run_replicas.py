"""`make run-replicas`: three replicas of the service on consecutive ports in front of one PostgreSQL and one
gateway simulator, as a deployment would run them (minus the load balancer: clients spread calls themselves with
round_robin). Ctrl-C stops everything.

    DATABASE_URL   the PostgreSQL (default postgresql://postgres@127.0.0.1:5432/otari_batch; made if missing)
    REPLICAS_PORT  the first replica's port (default 50051; then 50052, 50053)
    GATEWAY_URL    a real gateway instead of the simulator
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import asyncpg

BIN = Path(sys.executable).parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/otari_batch"
REPLICAS = 3


async def ensure_database(url: str) -> None:
    """Make the database if it is not there (connecting to the server's `postgres` database to do so)."""
    try:
        await (await asyncpg.connect(url)).close()
        return
    except asyncpg.InvalidCatalogNameError:
        pass
    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/")
    admin = await asyncpg.connect(parts._replace(path="/postgres").geturl())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    print(f"made database {name}", flush=True)


def start_simulator(state: Path) -> tuple[subprocess.Popen[str], str]:
    """The gateway simulator, its output in state/replicas/simulator.log; returns it and its URL."""
    log = state / "simulator.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(BIN / "otari-batch-simulator"), "--host", "127.0.0.1", "--port", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        if found := re.search(r"simulator at (http://127\.0\.0\.1:\d+)", log.read_text()):
            return process, found.group(1)
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the simulator did not start: see {log}")


def main() -> None:
    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    first = int(os.environ.get("REPLICAS_PORT", "50051"))
    asyncio.run(ensure_database(url))
    state = Path("state/replicas")
    state.mkdir(parents=True, exist_ok=True)
    children: list[subprocess.Popen[str]] = []
    gateway = os.environ.get("GATEWAY_URL")
    if not gateway:
        simulator, gateway = start_simulator(state)
        children.append(simulator)
        print(f"simulator at {gateway} (API keys sim-key-alice, sim-key-bob)", flush=True)
    ports = [first + i for i in range(REPLICAS)]
    for i, port in enumerate(ports):
        env = {
            **os.environ,
            "GATEWAY_URL": gateway,
            "DATABASE_URL": url,
            "STATE_DB": str(state / f"replica-{i}.db"),  # its directory: local files only; the state is in PostgreSQL
            "GRPC_LISTEN": f"127.0.0.1:{port}",
        }
        children.append(subprocess.Popen([str(BIN / "otari-batch-grpc")], env=env, text=True))
    addresses = ",".join(f"127.0.0.1:{port}" for port in ports)
    print(
        f"replicas on {addresses}; state in {urllib.parse.urlsplit(url)._replace(netloc='…').geturl()}\n"
        f'  Python: BatchClient([{", ".join(repr(f"127.0.0.1:{p}") for p in ports)}], api_key="sim-key-alice")\n'
        f"  grpcurl/buf: any one of them; Ctrl-C stops all",
        flush=True,
    )
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops everything as Ctrl-C does
    try:
        while all(child.poll() is None for child in children):
            time.sleep(1.0)
        print("a process stopped; stopping the others", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        for stop in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not leave children behind
            signal.signal(stop, signal.SIG_IGN)
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    main()
