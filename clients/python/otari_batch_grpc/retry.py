"""When a failed call is tried again: what a retry can cure, how long to wait (RetryInfo when the service sends it,
else an exponential backoff with full jitter), and never past the call's one deadline.

Hand-written rather than tenacity's or google-api-core's: the streams reset their attempts after each message they
get (a watch that ran an hour and then broke starts afresh), the wait comes from the error's RetryInfo, and the
client brings nothing that a call does not need (google-api-core would bring google-auth and requests).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from otari_batch_grpc.errors import BatchError

# Told of each retry before its wait: (the error, the attempt that failed: 1 for the first, the seconds it waits).
OnRetry = Callable[[BatchError, int, float], object]


@dataclass(frozen=True)
class Retry:
    """How a call is retried. `attempts` bounds the tries of one call (and of each reconnect of a stream); the
    wait before try n+1 is the error's RetryInfo delay (plus up to 10%, so callers told the same delay do not all
    come back at once), or without one a random time up to `initial * multiplier**(n-1)`, at most `maximum`."""

    attempts: int = 5
    initial: float = 1.0
    maximum: float = 30.0
    multiplier: float = 2.0
    on_retry: OnRetry | None = None
    _random: random.Random = field(default_factory=random.Random, init=False, repr=False, compare=False)

    def pause(self, error: BatchError, attempt: int, *, until: float | None, retryable: bool = False) -> float | None:
        """Seconds to wait before trying again after `error` ended try `attempt`; None when it is not retried: a
        failure a retry cannot cure (unless the caller knows better: `retryable`), the last attempt, or a wait that
        would end past `until` (time.monotonic())."""
        if not (error.retryable or retryable) or attempt >= self.attempts:
            return None
        if error.retry_after is not None:
            delay = error.retry_after * (1 + 0.1 * self._random.random())
        else:
            delay = self._random.uniform(0, min(self.maximum, self.initial * self.multiplier ** (attempt - 1)))
        if until is not None and time.monotonic() + delay >= until:
            return None
        if self.on_retry is not None:
            self.on_retry(error, attempt, delay)
        return delay


def time_left(until: float | None) -> float | None:
    """Seconds until `until` (time.monotonic()), None for no deadline."""
    return None if until is None else max(0.0, until - time.monotonic())
