"""The processes a bench runs: the gateway simulator and the gRPC server, each a child of its own with a clean
environment (PATH, HOME and what the bench sets, nothing inherited), its output in a log file, its port read
from that log. Stopped by PID (SIGTERM, then SIGKILL), always. And what /proc says about a process."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
KEY = "sim-key-alice"
GRPC_AUTH = (("authorization", f"Bearer {KEY}"),)
HTTP_AUTH = {"authorization": f"Bearer {KEY}"}
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def clean_env(settings: Mapping[str, str] | None = None) -> dict[str, str]:
    """PATH and HOME from here, plus `settings`; nothing else of this process's environment."""
    env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    env.update(settings or {})
    return env


@dataclass
class Child:
    process: subprocess.Popen[bytes]
    log: Path
    port: int

    @property
    def pid(self) -> int:
        return self.process.pid


@contextlib.contextmanager
def child(argv: list[str], settings: Mapping[str, str], ready: str, log: Path, *, cwd: Path = ROOT) -> Iterator[Child]:
    """Start argv; yield once `ready` (a regex, port as group 1) shows in its output; stop it by PID after."""
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=cwd, env=clean_env(settings), stdout=out, stderr=subprocess.STDOUT)
    try:
        yield Child(process, log, int(_logged(process, log, ready, Path(argv[0]).name)))
    finally:
        stop(process)


def _logged(process: subprocess.Popen[bytes], log: Path, pattern: str, name: str) -> str:
    """Group 1 of `pattern` once the child's log shows it (within START_TIMEOUT, while the child runs)."""
    deadline = time.monotonic() + START_TIMEOUT
    compiled = re.compile(pattern)
    while (match := compiled.search(log.read_text(errors="replace"))) is None:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited ({process.returncode}): {_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} logged no {pattern!r} in {START_TIMEOUT:.0f} s: {_tail(log)}")
        time.sleep(0.02)
    return match.group(1)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child by its PID, SIGKILL it if it lingers; reaps it either way."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT)


def _tail(log: Path, lines: int = 5) -> str:
    return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:])


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    """A fresh temporary directory for one run (state database, logs), removed after."""
    path = Path(tempfile.mkdtemp(prefix="otari-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def simulator(
    work: Path,
    *,
    stage_seconds: float = 3600.0,
    name: str = "simulator",
    latency: float = 0.0,
    concurrency: int = 0,
) -> Iterator[Child]:
    """The gateway simulator; `latency` and `concurrency` make it as slow as a real gateway (50 ms, 20 at once)."""
    argv = [str(BIN / "otari-batch-simulator"), "--host", "127.0.0.1", "--port", "0"]
    argv += ["--stage-seconds", str(stage_seconds), "--latency", str(latency), "--concurrency", str(concurrency)]
    with child(argv, {}, r"simulator at http://127\.0\.0\.1:(\d+)", work / f"{name}.log") as sim:
        yield sim


@contextlib.contextmanager
def server(
    work: Path, gateway_port: int, *, db: str = "state.db", name: str = "server", **settings: str
) -> Iterator[Child]:
    """The service on a fresh port, its state in `work/db` (fresh unless a bench reuses it on purpose). The load
    of a bench comes from one key standing for many callers: the per-caller limits are lifted (to the connection
    pool's size for gateway calls), and so is the cap on calls per connection, so the figures measure the service,
    not its limits."""
    env = {
        "GATEWAY_URL": f"http://127.0.0.1:{gateway_port}",
        "GRPC_LISTEN": "127.0.0.1:0",
        "STATE_DB": str(work / db),
        "SHUTDOWN_GRACE": "2",
        "LIMIT_STREAMS_PER_CALLER": "100000",
        "LIMIT_STREAMS_TOTAL": "100000",
        "LIMIT_WATCHED_PER_CALLER": "100000",
        "LIMIT_UPSTREAM_PER_CALLER": "100",
        "LIMIT_UPSTREAM_QUEUE_PER_CALLER": "100000",
        "GRPC_MAX_CONCURRENT_STREAMS": "100000",  # a client process's one connection carries thousands of watches
        **settings,
    }
    with child([str(BIN / "otari-batch-grpc")], env, r"serving on \S+ \(port (\d+)\)", work / f"{name}.log") as srv:
        yield srv


def metrics_url(srv: Child) -> str:
    """The /metrics URL of a server started with METRICS_ADDRESS (it says so in its log just after it serves)."""
    return _logged(srv.process, srv.log, r"Prometheus metrics on (http://\S+/metrics)", "server")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process (all its threads) has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mib(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of the process, MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = re.search(r"VmRSS:\s+(\d+)", status)
    peak = re.search(r"VmHWM:\s+(\d+)", status)
    if rss is None or peak is None:
        raise RuntimeError(f"no VmRSS/VmHWM for {pid}")
    return int(rss.group(1)) / 1024, int(peak.group(1)) / 1024


def user_seconds(pid: int) -> float:
    """User-mode CPU time of the process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / os.sysconf("SC_CLK_TCK")


def machine_user_seconds() -> float:
    """User-mode CPU time every process on this machine has used (all cores), from /proc/stat. User mode only:
    the kernel's loopback networking for the bench's own traffic is counted to no process."""
    user, nice = (int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:3])
    return (user + nice) / os.sysconf("SC_CLK_TCK")


def user_of(pids: list[int]) -> float:
    """User-mode CPU seconds of these processes, those still running."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += user_seconds(pid)
    return total


def own_user_seconds() -> float:
    """User CPU time of this process plus its children that have been waited for (every child of a finished
    bench is)."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[13])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
