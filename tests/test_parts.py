"""A batch of any size, in parts (domain/parts): where it splits, and the one status rule of the whole."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otari_batch_grpc.server.domain.parts import whole
from otari_batch_grpc.server.domain.parts.plan import Part, PartTooLarge, split
from otari_batch_grpc.v1 import batch_pb2

V, P, F = batch_pb2.BATCH_STATUS_VALIDATING, batch_pb2.BATCH_STATUS_IN_PROGRESS, batch_pb2.BATCH_STATUS_FINALIZING
DONE, FAILED = batch_pb2.BATCH_STATUS_COMPLETED, batch_pb2.BATCH_STATUS_FAILED
EXPIRED, CANCELLED = batch_pb2.BATCH_STATUS_EXPIRED, batch_pb2.BATCH_STATUS_CANCELLED
CANCELLING, UNKNOWN = batch_pb2.BATCH_STATUS_CANCELLING, batch_pb2.BATCH_STATUS_UNSPECIFIED


def test_a_batch_splits_at_the_request_limit() -> None:
    assert split([1] * 25_000, max_requests=10_000, max_bytes=10**9) == [
        Part(0, 10_000),
        Part(10_000, 20_000),
        Part(20_000, 25_000),
    ]
    assert split([1] * 10_000, max_requests=10_000, max_bytes=10**9) == [Part(0, 10_000)]
    assert split([], max_requests=10, max_bytes=10) == []


def test_a_batch_splits_at_the_byte_limit_and_refuses_a_request_no_part_holds() -> None:
    assert split([4, 4, 4, 1, 9], max_requests=100, max_bytes=9) == [Part(0, 2), Part(2, 4), Part(4, 5)]
    with pytest.raises(PartTooLarge) as caught:
        split([1, 10, 1], max_requests=100, max_bytes=9)
    assert (caught.value.index, caught.value.size) == (1, 10)


@given(
    sizes=st.lists(st.integers(min_value=1, max_value=50), max_size=300),
    max_requests=st.integers(min_value=1, max_value=40),
    max_bytes=st.integers(min_value=50, max_value=400),
)
def test_parts_cover_every_request_once_in_order_within_the_limits(
    sizes: list[int], max_requests: int, max_bytes: int
) -> None:
    parts = split(sizes, max_requests=max_requests, max_bytes=max_bytes)
    assert [i for part in parts for i in range(part.start, part.end)] == list(range(len(sizes)))
    for part in parts:
        assert 1 <= len(part) <= max_requests and sum(sizes[part.start : part.end]) <= max_bytes
    for before, after in itertools.pairwise(parts):  # greedy: the next request did not fit
        assert len(before) == max_requests or sum(sizes[before.start : after.start + 1]) > max_bytes
    assert split(sizes, max_requests=max_requests, max_bytes=max_bytes) == parts  # the same plan every time


@pytest.mark.parametrize("one", [V, P, F, DONE, FAILED, EXPIRED, CANCELLED, CANCELLING, UNKNOWN])
def test_a_batch_of_one_part_has_that_parts_status(one: batch_pb2.BatchStatus.ValueType) -> None:
    assert whole.status([one]) == one


@pytest.mark.parametrize(
    ("parts", "options", "expected"),
    [
        ([V, P, F], {}, V),  # the least advanced live part
        ([DONE, P, F], {}, P),
        ([DONE, F], {}, F),
        ([DONE, UNKNOWN], {}, V),  # a status the contract does not know: live, least advanced
        ([DONE, P], {"cancel_asked": True}, CANCELLING),
        ([DONE, CANCELLING], {}, CANCELLING),
        ([DONE, DONE], {"rerun_pending": True}, P),  # failures being re-run: still going
        ([DONE, DONE], {"cancel_asked": True, "rerun_pending": True}, CANCELLING),
        ([DONE, DONE], {}, DONE),
        ([DONE, FAILED, EXPIRED], {}, DONE),  # finished work counts: each request says its own outcome
        ([DONE, CANCELLED], {}, CANCELLED),
        ([DONE, DONE], {"cancel_asked": True}, CANCELLED),  # asked too late: the batch still says it was cancelled
        ([EXPIRED, EXPIRED], {}, EXPIRED),
        ([FAILED, FAILED], {}, FAILED),
        ([FAILED, EXPIRED], {}, FAILED),
    ],
)
def test_the_status_of_many_parts_is_the_contracts_one_rule(
    parts: list[batch_pb2.BatchStatus.ValueType], options: dict[str, bool], expected: int
) -> None:
    assert whole.status(parts, **options) == expected


def test_counts_sum_the_parts_over_the_requests_the_batch_holds() -> None:
    parts = [
        batch_pb2.RequestCounts(total=10_000, completed=9_990, failed=10),
        batch_pb2.RequestCounts(total=0),  # still validating: the gateway counts 0
    ]
    assert whole.counts(parts, requests=15_000) == batch_pb2.RequestCounts(total=15_000, completed=9_990, failed=10)
