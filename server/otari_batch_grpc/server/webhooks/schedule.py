"""When a delivery is tried again: exponential backoff with full jitter, each wait capped, for a bounded time.

Try n (from 1) failed: the next comes after a random wait in [0, min(cap, first * 2^(n-1))] (full jitter, so many
receivers back from one outage are not all tried again at once), or after the receiver's Retry-After when it sent
one (up to `retry_after_cap`) if that is later: a Retry-After of 0 does not make a receiver tried in a loop. A
delivery whose first try is older than `window` is not tried again: it is dropped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    first: float = 5.0  # seconds: the longest wait after the first failed try
    cap: float = 3600.0  # no wait longer than this (an hour)
    window: float = 24 * 3600.0  # a delivery is tried for this long from its first try, then dropped
    retry_after_cap: float = 3600.0  # a receiver's Retry-After is honoured up to this

    def __post_init__(self) -> None:
        if not 0 < self.first <= self.cap or self.window <= 0 or self.retry_after_cap < 0:
            raise ValueError("backoff: 0 < first <= cap, a window and a Retry-After cap not negative")

    def next_try(
        self,
        failed: int,
        *,
        now: float,
        first_try: float,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> float | None:
        """When to try again after `failed` tries (epoch seconds), or None: the window has passed."""
        if failed < 1:
            raise ValueError("at least one try failed")
        ceiling = min(self.cap, self.first * 2.0 ** min(failed - 1, 60))
        wait = (rng or random).uniform(0.0, ceiling)
        if retry_after is not None:  # never sooner than the receiver asked (up to the cap), nor than the backoff
            wait = max(wait, min(max(0.0, retry_after), self.retry_after_cap))
        at = now + wait
        return at if at - first_try <= self.window else None

    def schedule(self) -> list[float]:
        """The longest wait after each failed try, until the window is spent (for the README)."""
        waits: list[float] = []
        spent, failed = 0.0, 1
        while True:
            wait = min(self.cap, self.first * 2.0 ** min(failed - 1, 60))
            if spent + wait > self.window:
                return waits
            waits.append(wait)
            spent += wait
            failed += 1
