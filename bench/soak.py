"""`make soak` (#24): the service kept under a mixed load for SOAK_SECONDS while things break, then judged.

Three replicas on one PostgreSQL database of the run's own (made, then dropped), reaching it through a TCP proxy
of the soak's (so PostgreSQL can be made unreachable), the gateway simulator in its own process as slow as the
real gateway (50 ms a request, 20 at once) behind a second proxy, and two client processes (bench/soak_client.py)
doing creates, gets, lists, watches, waits, results and cancels through the round-robin Python client. Faults
come from a seeded schedule (bench/soak_faults.py), printed first: `SOAK_SEED=N make soak` replays one. At the end,
bench/soak_check.py holds what the clients saw against the simulator's own records and the service's revisions,
prints the figures and every violation; the exit status is 1 when there is one (the run's folder, logs and
records, is then kept; SOAK_KEEP=1 keeps it always).

    python -m bench.soak [--seconds 300] [--seed N] [--faults kill9,pg_down,...]   (SOAK_SECONDS, SOAK_SEED,
                                                                                 SOAK_FAULTS: every kind unset)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import procs, soak_check, soak_webhooks
from bench.replicas import ADMIN_URL, database
from bench.soak_faults import KINDS, Fault, schedule, tail_of, warmup_of
from bench.soak_proxy import Proxy

REPLICAS = 3
CLIENTS = 2
FLOWS = 6  # per client process
STAGE_SECONDS = 3.0  # a batch completes ~9 s after its create
LATENCY, CONCURRENCY = 0.05, 20  # the real gateway's pace
TERMINATE = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"
SETTINGS = {
    "GATEWAY_API_ROOT": "/v1",
    "SHUTDOWN_GRACE": "2",
    "WATCH_POLL_MIN": "0.5",
    "WATCH_POLL_MAX": "3",
    "WATCH_HEARTBEAT": "5",
    "WATCH_LEASE_SECONDS": "5",
    "UPSTREAM_TIMEOUT": "8",
    "LIMIT_UPSTREAM_PER_CALLER": "100",
    "LIMIT_UPSTREAM_QUEUE_PER_CALLER": "100000",
    "LIMIT_STREAMS_PER_CALLER": "100000",
    "LIMIT_WATCHED_PER_CALLER": "100000",
    # #29: a key revoked halfway is refused everywhere within this, and a stream it holds ends a poll interval later.
    "OWNER_TRUST_SECONDS": str(soak_check.TRUST_SECONDS),
    # #31: batches of 5 to 12 requests are made of 2 or 3 parts (and re-runs of their transient failures).
    "PART_MAX_REQUESTS": "4",
    # #32: an endpoint of Alice's and one of Bob's, on a receiver that misbehaves (bench/soak_webhooks.py).
    **soak_webhooks.SETTINGS,
}


class Replica:
    """One replica on a fixed port (the clients' round_robin list does not change), restarted in place."""

    def __init__(self, index: int, work: Path, settings: dict[str, str]) -> None:
        self.index, self.work, self.port = index, work, procs.free_port()
        self.settings = {**settings, "GRPC_LISTEN": f"127.0.0.1:{self.port}", "STATE_DB": str(work / f"r{index}.db")}
        self.process: asyncio.subprocess.Process | None = None
        self.incarnations = 0
        self.started = 0.0
        self.warm_rss: float | None = None

    async def start(self) -> None:
        self.incarnations += 1
        log = self.work / f"replica-{self.index}.{self.incarnations}.log"
        with log.open("wb") as out:
            self.process = await asyncio.create_subprocess_exec(
                str(procs.BIN / "otari-batch-grpc"),
                cwd=procs.ROOT,
                env=procs.clean_env(self.settings),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + procs.START_TIMEOUT
        while "serving on" not in log.read_text(errors="replace"):
            if self.process.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"replica {self.index} did not start: see {log}")
            await asyncio.sleep(0.05)
        self.started = time.monotonic()

    async def kill9(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def terminate(self) -> None:
        """SIGTERM, as a rolling update does; SIGKILL after procs.STOP_TIMEOUT."""
        if self.process is not None:
            await stop(self.process)

    def rss(self) -> float | None:
        if self.process is None or self.process.returncode is not None:
            return None
        with contextlib.suppress(FileNotFoundError, RuntimeError):
            return procs.memory_mib(self.process.pid)[0]
        return None


class Soak:
    def __init__(
        self, work: Path, seconds: float, seed: int, sim_port: int, db_url: str, kinds: tuple[str, ...]
    ) -> None:
        self.work, self.seconds, self.seed, self.db_url = work, seconds, seed, db_url
        self.sim = httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim_port}", timeout=30)
        admin = urllib.parse.urlsplit(ADMIN_URL)
        self.pg_proxy = Proxy(admin.hostname or "127.0.0.1", admin.port or 5432)
        self.gw_proxy = Proxy("127.0.0.1", sim_port)
        self.faults = schedule(seed, seconds, REPLICAS, kinds)
        self.replicas: list[Replica] = []
        self.revoked_at: float | None = None  # when the gateway deactivated the revokee's key (epoch seconds)

    async def run(self) -> int:
        await self.pg_proxy.start()
        await self.gw_proxy.start()
        parts = urllib.parse.urlsplit(self.db_url)
        via_proxy = parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{self.pg_proxy.port}").geturl()
        settings = {**SETTINGS, "GATEWAY_URL": f"http://127.0.0.1:{self.gw_proxy.port}", "DATABASE_URL": via_proxy}
        self.replicas = [Replica(i, self.work, settings) for i in range(REPLICAS)]
        try:
            await asyncio.gather(*(r.start() for r in self.replicas))
            return await self._load_and_judge()
        finally:
            for replica in self.replicas:
                await replica.terminate()
            await self.pg_proxy.close()
            await self.gw_proxy.close()
            await self.sim.aclose()

    async def _load_and_judge(self) -> int:
        begin = time.time()
        until = begin + self.seconds - min(20.0, tail_of(self.seconds) / 2)
        targets = ",".join(f"127.0.0.1:{r.port}" for r in self.replicas)
        outs = [self.work / f"client-{i}.jsonl" for i in range(CLIENTS)]
        made = await self.sim.post(
            "/v1/keys", json={"user_id": "alice", "key_name": "revokee"}, headers=soak_check.MASTER
        )
        made.raise_for_status()
        revokee_id, revokee_key = made.json()["id"], made.json()["key"]
        receiver = soak_webhooks.SoakReceiver(self.seed)
        await receiver.start()
        try:
            return await self._run_clients(begin, until, targets, outs, revokee_id, revokee_key, receiver)
        finally:
            await receiver.close()

    async def _run_clients(
        self,
        begin: float,
        until: float,
        targets: str,
        outs: list[Path],
        revokee_id: str,
        revokee_key: str,
        receiver: soak_webhooks.SoakReceiver,
    ) -> int:
        await receiver.register(targets.split(",")[0])
        receiver.misbehave(until)
        clients = []
        for i, out in enumerate(outs):
            argv = ["-m", "bench.soak_client", "--targets", targets, "--until", str(until), "--out", str(out)]
            if i == 0:
                argv += ["--revoked-key", revokee_key]
            with (self.work / f"client-{i}.log").open("wb") as log:
                clients.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        *argv,
                        *("--seed", str(self.seed * 100 + i), "--flows", str(FLOWS)),
                        cwd=procs.ROOT,
                        env=procs.clean_env(),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        sampler = asyncio.create_task(self._sample_rss(begin))
        revoker = asyncio.create_task(self._revoke(begin + self.seconds / 2, revokee_id))
        try:
            await self._inject(begin)
            exits = await self._wait_for(clients, begin + self.seconds + 120)
        finally:
            sampler.cancel()
            revoker.cancel()
            for client in clients:
                await stop(client)
        end_rss = {r.index: (r.rss(), r.warm_rss, r.incarnations) for r in self.replicas}
        pending = await soak_webhooks.drain(self.db_url, time.time() + soak_webhooks.DRAIN_SECONDS)
        await self.sim.post("/_simulator/pace", json={"latency": 0, "concurrency": 0})  # the checks' reads: fast
        report = soak_check.Report(self.faults, begin, revoked_at=self.revoked_at)
        report.load(outs, exits)
        await report.gather(self.sim, self.db_url, self.work)
        created = {c["id"] for c in report.records["create"] if c["id"]}
        figures = await soak_webhooks.check(report, receiver, created, self.db_url)
        print(f"webhooks: {figures}; still pending after the drain: {pending}")
        return report.judge(end_rss, wall=time.time() - begin)

    async def _revoke(self, at: float, key_id: str) -> None:
        """Deactivate the revokee's key at the gateway at `at` (the middle of the run), as an operator would."""
        await asyncio.sleep(max(0.0, at - time.time()))
        reply = await self.sim.patch(f"/v1/keys/{key_id}", json={"is_active": False}, headers=soak_check.MASTER)
        reply.raise_for_status()
        self.revoked_at = time.time()
        print(f"  revoked the revokee's key at {self.revoked_at - (at - self.seconds / 2):.0f}s", flush=True)

    async def _inject(self, begin: float) -> None:
        for fault in self.faults:
            await asyncio.sleep(max(0.0, begin + fault.at - time.time()))
            fault.began = time.time()
            print(f"  fault {fault.describe()}", flush=True)
            await self._one(fault)
            fault.ended = time.time()
        await asyncio.sleep(max(0.0, begin + self.seconds - time.time()))

    async def _one(self, fault: Fault) -> None:
        kind, seconds = fault.kind, fault.seconds
        if kind == "kill9":
            replica = self.replicas[fault.replica]
            await replica.kill9()
            await asyncio.sleep(seconds)
            await replica.start()
        elif kind == "rolling":
            for replica in self.replicas:
                await replica.terminate()
                await replica.start()
                await asyncio.sleep(1.0)
        elif kind == "pg_cut":
            name = urllib.parse.urlsplit(self.db_url).path.lstrip("/")
            admin = await asyncpg.connect(ADMIN_URL)
            try:
                await admin.execute(TERMINATE, name)
            finally:
                await admin.close()
            await asyncio.sleep(seconds)
        elif kind in ("pg_down", "gw_down"):
            proxy = self.pg_proxy if kind == "pg_down" else self.gw_proxy
            proxy.cut()
            await asyncio.sleep(seconds)
            proxy.restore()
        elif kind == "gw_slow":
            await self.sim.post("/_simulator/pace", json={"latency": 1.0, "concurrency": CONCURRENCY})
            await asyncio.sleep(seconds)
            await self.sim.post("/_simulator/pace", json={"latency": LATENCY, "concurrency": CONCURRENCY})
        elif kind in ("gw_5xx", "gw_drop"):
            spec: dict[str, Any] = {"op": "*", "status": fault.status, "detail": "soak: injected burst"}
            if kind == "gw_drop":
                spec = {"op": "create", "drop_after_create": True, "times": 3}
            (await self.sim.post("/_simulator/faults", json=spec)).raise_for_status()
            await asyncio.sleep(seconds)
            await self.sim.delete("/_simulator/faults")

    async def _sample_rss(self, begin: float) -> None:
        """Each replica's RSS once the load has warmed it up, before the first fault: what its RSS at the end (of
        whichever incarnation is alive then) is held against. (A restarted replica's RSS some seconds after its
        start measures its warm-up, not a leak: it climbs back to where the others are.)"""
        await asyncio.sleep(max(0.0, begin + warmup_of(self.seconds) - 1.0 - time.time()))
        for replica in self.replicas:
            replica.warm_rss = replica.rss()

    async def _wait_for(self, clients: list[asyncio.subprocess.Process], deadline: float) -> list[int | None]:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, deadline - time.time())):
                await asyncio.gather(*(c.wait() for c in clients))
        return [c.returncode for c in clients]


async def stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM by PID, SIGKILL after procs.STOP_TIMEOUT; reaped either way."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(procs.STOP_TIMEOUT):
            await process.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


@contextlib.contextmanager
def run_folder() -> Iterator[tuple[Path, list[bool]]]:
    """A folder for the run's logs and records: removed after a clean run, kept (and named) after a failed one."""
    path = Path(tempfile.mkdtemp(prefix="otari-soak-"))
    keep = [True]  # until the run says it is clean
    try:
        yield path, keep
    finally:
        if keep[0]:
            print(f"logs and records kept in {path}", flush=True)
        else:
            shutil.rmtree(path, ignore_errors=True)


async def main(seconds: float, seed: int, kinds: tuple[str, ...]) -> int:
    with run_folder() as (work, keep):
        with procs.simulator(work, stage_seconds=STAGE_SECONDS, latency=LATENCY, concurrency=CONCURRENCY) as sim:
            async with database() as url:
                soak = Soak(work, seconds, seed, sim.port, url, kinds)
                chosen = "" if kinds == KINDS else f" SOAK_FAULTS={','.join(kinds)}"
                replay = f"SOAK_SEED={seed} SOAK_SECONDS={seconds:g}{chosen} make soak"
                print(f"soak: seed {seed}, {seconds:g} s, faults {', '.join(kinds)} (replay: {replay})")
                print(f"fault schedule ({len(soak.faults)}):")
                for fault in soak.faults:
                    print(f"  {fault.describe()}")
                print("running", flush=True)
                code = await soak.run()
        keep[0] = code != 0 or bool(os.environ.get("SOAK_KEEP"))
        return code


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS") or 300))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED") or random.randrange(1, 10**6)))
    parser.add_argument(
        "--faults", default=os.environ.get("SOAK_FAULTS") or ",".join(KINDS), help="the kinds of fault to inject"
    )
    args = parser.parse_args()
    kinds = tuple(k for k in args.faults.split(",") if k)
    if not kinds or set(kinds) - set(KINDS):
        parser.error(f"--faults: kinds among {', '.join(KINDS)}")
    sys.exit(asyncio.run(main(args.seconds, args.seed, kinds)))


if __name__ == "__main__":
    cli()
