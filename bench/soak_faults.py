"""The soak's fault schedule: made from a seed (so a failing run can be replayed), printed, then injected one
fault at a time with a quiet gap between two.

Kinds: kill9 (a replica, restarted a few seconds later), rolling (SIGTERM and restart of each replica in turn),
pg_cut (the service's PostgreSQL connections terminated), pg_down (PostgreSQL unreachable: the soak's proxy in
front of it refuses), gw_slow (the gateway answering in about a second), gw_5xx (a burst of 502/503/504),
gw_drop (the replies of the next creates lost after the batch is made), gw_down (the gateway unreachable).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

KINDS = ("kill9", "rolling", "pg_cut", "pg_down", "gw_slow", "gw_5xx", "gw_drop", "gw_down")
# Seconds each kind lasts (from, to); rolling and pg_cut take what they take (the figure is what to expect).
DURATION = {
    "kill9": (2.0, 5.0),  # down before the restart
    "rolling": (15.0, 15.0),
    "pg_cut": (1.0, 1.0),
    "pg_down": (5.0, 12.0),
    "gw_slow": (6.0, 12.0),
    "gw_5xx": (3.0, 8.0),
    "gw_drop": (8.0, 8.0),
    "gw_down": (4.0, 10.0),
}
GAP = (12.0, 18.0)  # quiet seconds between two faults
RECOVERY = 8.0  # seconds after a fault during which its errors still count as its own


@dataclass
class Fault:
    kind: str
    at: float  # seconds after the soak started, as scheduled
    seconds: float
    replica: int  # kill9: which one (else unused)
    status: int  # gw_5xx: which 5xx (else unused)
    began: float = 0.0  # epoch seconds, as injected
    ended: float = 0.0

    def describe(self) -> str:
        extra = {"kill9": f" replica {self.replica}", "gw_5xx": f" status {self.status}"}.get(self.kind, "")
        return f"{self.at:6.1f}s  {self.kind:<8} {self.seconds:4.1f}s{extra}"

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def warmup_of(seconds: float) -> float:
    return min(30.0, 0.15 * seconds)


def tail_of(seconds: float) -> float:
    """Quiet seconds at the end: the last batches finish and every watch reaches the state the gateway holds."""
    return min(45.0, 0.3 * seconds)


def schedule(seed: int, seconds: float, replicas: int, kinds_used: tuple[str, ...] = KINDS) -> list[Fault]:
    """Faults from warm-up to the tail, every kind once (in an order the seed shuffles) before any comes again."""
    rng = random.Random(seed)
    faults: list[Fault] = []
    at, end = warmup_of(seconds), seconds - tail_of(seconds)
    kinds: list[str] = []
    while True:
        if not kinds:
            kinds = list(kinds_used)
            rng.shuffle(kinds)
        kind = kinds.pop()
        low, high = DURATION[kind]
        length = round(rng.uniform(low, high), 1)
        fault = Fault(kind, round(at, 1), length, rng.randrange(replicas), rng.choice((502, 503, 504)))
        if at + length > end:
            return faults
        faults.append(fault)
        at += length + rng.uniform(*GAP)


def windows(faults: list[Fault]) -> list[tuple[float, float]]:
    """The epoch seconds during which a fault's errors are expected: from its start to RECOVERY after its end."""
    return [(f.began, f.ended + RECOVERY) for f in faults if f.began]


def during(windows: list[tuple[float, float]], start: float, end: float) -> bool:
    """Whether a call from `start` to `end` overlaps a fault window."""
    return any(start <= w_end and end >= w_start for w_start, w_end in windows)
