"""When a webhook delivery is tried again (#32): backoff with full jitter, Retry-After honoured to a cap, a window."""

from __future__ import annotations

import random

import pytest

from otari_batch_grpc.server.webhooks.schedule import Backoff


def test_each_wait_is_jittered_within_a_doubling_ceiling_and_capped() -> None:
    backoff = Backoff(first=5.0, cap=60.0, window=3600.0)
    rng = random.Random(7)
    for failed, ceiling in ((1, 5.0), (2, 10.0), (3, 20.0), (4, 40.0), (5, 60.0), (40, 60.0), (500, 60.0)):
        waits = [backoff.next_try(failed, now=1000.0, first_try=1000.0, rng=rng) for _ in range(200)]
        assert all(w is not None and 1000.0 <= w <= 1000.0 + ceiling for w in waits), failed
        assert max(w for w in waits if w is not None) > 1000.0 + ceiling * 0.8  # spread over the whole range


def test_retry_after_is_honoured_up_to_its_cap() -> None:
    backoff = Backoff(first=5.0, cap=60.0, retry_after_cap=120.0)
    assert backoff.next_try(1, now=0.0, first_try=0.0, retry_after=90.0) == 90.0  # longer than the backoff: kept
    assert backoff.next_try(1, now=0.0, first_try=0.0, retry_after=7200.0) == 120.0
    rng = random.Random(7)
    floor = Backoff(first=5.0, cap=60.0).next_try(3, now=0.0, first_try=0.0, rng=random.Random(7))
    # Retry-After 0 (or nonsense) is no reason to try sooner than the backoff would: no loop of tries.
    assert backoff.next_try(3, now=0.0, first_try=0.0, retry_after=-5.0, rng=rng) == floor
    assert floor is not None and floor > 0


def test_past_the_window_a_delivery_is_dropped() -> None:
    short = Backoff(first=1.0, cap=1.0, window=24 * 3600.0)
    assert short.next_try(9, now=24 * 3600.0 - 10, first_try=0.0, retry_after=5.0) is not None
    assert short.next_try(9, now=24 * 3600.0 - 10, first_try=0.0, retry_after=20.0) is None
    backoff = Backoff(first=5.0, cap=3600.0, window=24 * 3600.0)
    waits = backoff.schedule()
    assert waits[:4] == [5.0, 10.0, 20.0, 40.0] and waits[-1] == 3600.0 and sum(waits) <= 24 * 3600.0


@pytest.mark.parametrize("fields", [{"first": 0.0}, {"first": 10.0, "cap": 5.0}, {"window": 0.0}])
def test_a_backoff_that_cannot_be_is_refused(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(**fields)
