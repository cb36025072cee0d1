"""Property-based fuzzing of every BatchService request type against one real running server.

Each test draws well-formed protobuf messages with hostile values (huge strings, control and format characters,
unicode, `.`/`..`, numbers at and past their ranges, tokens that are base64 of anything including deeply nested
JSON, Durations of any sign and size, Structs with NaN, infinities and huge keys, repeated fields of odd sizes)
and sends them to a real gRPC server proxying the real gateway simulator. Whatever the answer, it is a status the
service meant: never UNKNOWN or INTERNAL, never RESOURCE_EXHAUSTED from trailers too large to send, every error a
google.rpc.Status with one ErrorInfo and a short message; and the server still answers a plain GetBatch.

(Bytes that are not a valid message at all are another test's business: these are messages the client encodes.)
FUZZ_EXAMPLES=1000 runs more examples per property than the default 100.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import pytest_asyncio
from google.protobuf import duration_pb2, struct_pb2
from google.rpc import error_details_pb2, status_pb2
from hypothesis import HealthCheck, currently_in_test_context, example, given, settings, target
from hypothesis import strategies as st

from otari_batch_grpc.server.app import BatchServer
from otari_batch_grpc.server.domain.errors import DOMAIN
from otari_batch_grpc.simulator.run import running_simulator
from otari_batch_grpc.simulator.state import SimState
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from otari_batch_grpc.v1 import batch_service_pb2_grpc
from tests.conftest import ALICE, BOB, MASTER, create_request, http_client, make_settings

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

pytestmark = pytest.mark.asyncio(loop_scope="module")


# A status travels in HTTP/2 trailers: grpc-core refuses, at random, headers and trailers past 8 KiB in all (its
# soft limit: each counted as name + value + 32 bytes, binary values unencoded, grpc-message percent-encoded), and
# always past 16 KiB; the caller gets RESOURCE_EXHAUSTED "Stream removed" instead of the status meant for it. So an
# error's whole block must stay under the soft limit, whatever it is sent for; and its message be short.
SOFT_METADATA_LIMIT = 8192
MAX_MESSAGE_CHARS = 1024
# grpc-core's own refusal of a request larger than the server takes (MAX_MESSAGE_BYTES): no handler saw it.
_TOO_LARGE = re.compile(r"SERVER: Received message larger than max \(\d+ vs\. \d+\)")
# Calls that may rightly wait (a watch, a long poll, results with wait=true) get this long, then the client gives up.
WAIT_DEADLINE = 0.3
CALL_DEADLINE = 10.0

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "100")),
    deadline=None,
    database=None,  # nothing written into the working tree; a failure prints its reproducing example
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@dataclass
class Live:
    """The module's running server and what a fuzzed request may point at."""

    stub: Stub
    live_id: str  # a batch of alice's that stays in `validating`
    done_id: str  # a completed batch of alice's
    list_token: str  # a real next_page_token of alice's ListBatches (provider "openai")
    resume_token: str  # a real WatchBatch resume_token for live_id
    many_token: str  # a real WatchBatches resume_token (no batch_ids)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    state = SimState(stage_seconds=3600)
    state_dir: Path = tmp_path_factory.mktemp("fuzz")
    async with (
        running_simulator(state) as url,
        http_client(base_url=url) as http,
        BatchServer(make_settings(url, state_dir), gateway_url=url) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        stub: Stub = batch_service_pb2_grpc.BatchServiceStub(channel)
        ids = [(await stub.CreateBatch(create_request(1), metadata=ALICE)).batch.id for _ in range(3)]
        done_id = ids[0]
        (await http.post(f"/_simulator/batches/{done_id}/status", json={"status": "completed"})).raise_for_status()
        await stub.GetBatch(pb.GetBatchRequest(batch_id=done_id), metadata=ALICE)
        page = await stub.ListBatches(pb.ListBatchesRequest(provider="openai", page_size=1), metadata=ALICE)
        watch = stub.WatchBatch(pb.WatchBatchRequest(batch_id=ids[1]), metadata=ALICE)
        one = await watch.read()
        watch.cancel()
        many = stub.WatchBatches(pb.WatchBatchesRequest(), metadata=ALICE)
        first = await many.read()
        many.cancel()
        assert isinstance(one, pb.WatchBatchResponse) and isinstance(first, pb.WatchBatchesResponse)
        assert page.next_page_token and one.event.resume_token and first.event.resume_token
        yield Live(stub, ids[1], done_id, page.next_page_token, one.event.resume_token, first.event.resume_token)
        await still_serving(stub, ids[1])


async def still_serving(stub: Stub, batch_id: str) -> None:
    reply = await stub.GetBatch(pb.GetBatchRequest(batch_id=batch_id), metadata=ALICE, timeout=CALL_DEADLINE)
    assert reply.batch.id == batch_id


# -- what a hostile caller sends ------------------------------------------------------------------------------
# Placeholders for values only the running fixture knows, swapped in by `_real`.
LIVE_ID, DONE_ID, LIST_TOKEN, RESUME_TOKEN, MANY_TOKEN = "<live>", "<done>", "<list>", "<resume>", "<many>"

ODD_CHARS = st.characters(categories=["Cc", "Cf", "Co", "Cn", "Mn", "Zs", "Zl", "Zp", "So"])
ODD_STRINGS = st.sampled_from(
    [
        "",
        " ",
        ".",
        "..",
        "../..",
        "a/../../v1/batches",
        "a?b#c",
        "%2e%2e",
        "%00",
        "openai",
        "OPENAI",
        "openai:gpt-4o-mini",
        "openai:",
        ":x",
        "\x00",
        "\t\n",
        "\u202e",
        "\ufeff",
        "é" * 300,
        "🙂" * 257,
        "00000000-0000-0000-0000-000000000000",
        "otari_user_id",
        "otari_request_id",
    ]
)
HUGE = st.builds(
    lambda unit, count: unit * count,
    st.one_of(st.text(min_size=1, max_size=3), st.sampled_from(["🙂", "\x01", "é", "\u202e", "%"])),
    st.sampled_from([65, 257, 513, 4_097, 16_385, 100_000]),
)
STRINGS = st.one_of(st.text(max_size=40), st.text(ODD_CHARS, max_size=20), ODD_STRINGS, HUGE)
# Each field is as often a value that passes as a hostile one, so that requests hostile in one field get past the
# checks of the others and reach deep (a token decoded, a store read, a gateway call).
IDS = st.one_of(
    st.sampled_from([LIVE_ID, DONE_ID]),
    st.sampled_from([LIVE_ID, DONE_ID]),
    STRINGS,
    st.sampled_from([LIVE_ID + "x", "batch_" + "0" * 250, "batch_1"]),
)
PROVIDERS = st.one_of(
    st.sampled_from(["", "openai"]),
    st.sampled_from(["", "openai"]),
    STRINGS,
    st.sampled_from(["OpenAI", "anthropic", "nobody"]),
)

INT32 = st.one_of(st.integers(0, 101), st.integers(-(2**31), 2**31 - 1), st.sampled_from([-1, 2**31 - 1, -(2**31)]))
INT64 = st.one_of(
    st.integers(0, 10), st.integers(-(2**63), 2**63 - 1), st.sampled_from([-1, 2**31, 2**53 + 1, 2**62, 2**63 - 1])
)

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**62, 2**63, 2**64, -(2**63) - 1, 10**400, 1e308, -1e308, 5e-324]),
    st.floats(),  # NaN and the infinities included
    st.text(max_size=20),
    HUGE,
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _b64(raw: bytes, *, padded: bool = False, urlsafe: bool = True) -> str:
    encoded = (base64.urlsafe_b64encode if urlsafe else base64.standard_b64encode)(raw).decode()
    return encoded if padded else encoded.rstrip("=")


def _json(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def _nested(depth: int, opener: str) -> bytes:
    closer = {"[": "]", '{"a":': "}", '{"v":1,"after":': "}"}[opener]
    return (opener * depth + "1" + closer * depth).encode()


@dataclass(frozen=True)
class TokenOf:
    """A token made at call time from these fields, placeholders replaced by the running fixture's values (so a
    fuzzed token can name the live batch, and reach past the checks to the store)."""

    fields: dict[str, Any]
    padded: bool
    ascii: bool


TOKEN_NUMBERS = st.one_of(
    st.integers(),
    st.floats(),
    st.sampled_from([0, 1, -1, 2**40, 2**40 + 1, 2**62 - 1, 2**62, 2**63, 2**64, 10**400, 1.7e9, 1e308]),
)
# JSON can carry what a protobuf string cannot: lone surrogates (escaped as \ud800, or raw and so not UTF-8).
TOKEN_STRINGS = st.one_of(IDS, st.sampled_from(["\ud800", "batch_\udfff", "\x00", "a b"]))
TOKEN_FIELDS = {
    "at": TOKEN_NUMBERS,
    "seen": TOKEN_NUMBERS,
    "rev": TOKEN_NUMBERS,
    "seq": TOKEN_NUMBERS,
    "after": TOKEN_STRINGS,
    "batch": TOKEN_STRINGS,
    "provider": st.one_of(PROVIDERS, TOKEN_STRINGS),
    "set": st.one_of(st.sampled_from(["all", "0" * 16]), STRINGS),
    "extra": JSON,
}
TOKEN_OBJECTS = st.fixed_dictionaries(
    {"v": st.one_of(st.just(1), st.just(1), JSON)},
    optional={name: st.one_of(values, values, JSON) for name, values in TOKEN_FIELDS.items()},
)
NESTED = st.builds(
    _nested, st.sampled_from([10, 999, 1_001, 3_000, 50_000]), st.sampled_from(["[", '{"a":', '{"v":1,"after":'])
)
TOKEN_BYTES = st.one_of(
    NESTED,
    NESTED,
    st.builds(lambda obj: json.dumps(obj).encode(), JSON),
    st.binary(max_size=64),
)
TOKENS = st.one_of(
    st.builds(TokenOf, TOKEN_OBJECTS, padded=st.booleans(), ascii=st.booleans()),
    st.builds(_b64, TOKEN_BYTES, padded=st.booleans(), urlsafe=st.booleans()),
    STRINGS,
    st.sampled_from([LIST_TOKEN, RESUME_TOKEN, MANY_TOKEN, LIST_TOKEN[:-1], RESUME_TOKEN + "A"]),
)

DURATIONS = st.one_of(
    st.none(),
    st.builds(duration_pb2.Duration, seconds=INT64, nanos=INT32),
    st.builds(
        duration_pb2.Duration,
        seconds=st.sampled_from([0, 1, -1, 2**62, 315_576_000_000, 315_576_000_001]),
        nanos=st.sampled_from([0, 1, -1, 999_999_999, 1_000_000_000]),
    ),
)

STRUCT_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.floats(),
        st.sampled_from([2.0**64, -(2.0**64), 1e308]),
        st.text(max_size=20),
        HUGE,
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(STRINGS, inner, max_size=3),
    max_leaves=10,
)


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


STRUCTS = st.one_of(
    st.builds(_struct, st.dictionaries(STRINGS, STRUCT_VALUES, max_size=4)),
    st.builds(lambda key, number: _struct({key: number}), STRINGS, st.sampled_from([math.nan, math.inf, -math.inf])),
    st.builds(lambda _: _struct({"messages": [{"role": "user", "content": "hi"}]}), st.none()),
)
ITEMS = st.builds(pb.BatchRequestItem, custom_id=STRINGS, body=st.one_of(st.none(), STRUCTS))
# Small, so ten thousand of them stay a few MB: NaN and the infinities still among the values.
SMALL_STRUCTS = st.builds(
    _struct, st.dictionaries(st.text(max_size=8), st.one_of(st.none(), st.floats(), st.text(max_size=8)), max_size=2)
)
SMALL_ITEMS = st.builds(
    pb.BatchRequestItem,
    custom_id=st.one_of(st.text(max_size=8), st.sampled_from(["", "x" * 512, "x" * 513])),
    body=st.one_of(st.none(), SMALL_STRUCTS, STRUCTS.filter(lambda s: s.ByteSize() < 200)),
)
REQUEST_LISTS = st.one_of(
    st.lists(ITEMS, max_size=4),
    # One item many times over: duplicate custom_ids, the same violation again and again (a status must still fit),
    # the 10,000 limit and one past it.
    st.builds(lambda item, count: [item] * count, ITEMS, st.sampled_from([2, 3, 7])),
    st.builds(lambda item, count: [item] * count, SMALL_ITEMS, st.sampled_from([101, 10_000, 10_001])),
)
CALLERS = st.sampled_from([ALICE, ALICE, ALICE, BOB, MASTER])


# -- what must hold ---------------------------------------------------------------------------------------------
def _token(live: Live, token: str | TokenOf) -> str:
    if isinstance(token, str):
        return _real(live, token)
    fields = {k: _real(live, v) if isinstance(v, str) else v for k, v in token.fields.items()}
    return _b64(json.dumps(fields, ensure_ascii=token.ascii).encode("utf-8", "surrogatepass"), padded=token.padded)


def _real(live: Live, value: str) -> str:
    return {
        LIVE_ID: live.live_id,
        DONE_ID: live.done_id,
        LIST_TOKEN: live.list_token,
        RESUME_TOKEN: live.resume_token,
        MANY_TOKEN: live.many_token,
        LIST_TOKEN[:-1]: live.list_token[:-1],
        RESUME_TOKEN + "A": live.resume_token + "A",
        LIVE_ID + "x": live.live_id + "x",
    }.get(value, value)


def metadata_bytes(error: grpc.aio.AioRpcError) -> int:
    """What grpc-core counts against its limits for the block a failed call ends with (a trailers-only response):
    checked against the sizes it reports when it refuses one (`soft limit (9916 vs. 8192)`)."""
    message = (error.details() or "").encode()
    encoded_message = sum(1 if 0x20 <= b < 0x7F and b != ord("%") else 3 for b in message)
    fixed = len(":status") + 3 + len("content-type") + len("application/grpc") + len("grpc-status") + 2
    sent = [(len(k), len(v) if isinstance(v, bytes) else len(v.encode())) for k, v in error.trailing_metadata() or ()]
    return fixed + len("grpc-message") + encoded_message + sum(k + v for k, v in sent) + 32 * (4 + len(sent))


def check_status(error: grpc.aio.AioRpcError, *, may_wait: bool) -> None:
    """An error the service meant, small enough to have reached the caller whole."""
    code = error.code()
    where = f"{code.name}: {(error.details() or '')[:300]!r}"
    assert code not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), where
    if code == grpc.StatusCode.DEADLINE_EXCEEDED and may_wait:
        return  # the client's own short deadline on a call that rightly waits
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and _TOO_LARGE.fullmatch(error.details() or ""):
        return  # a request past MAX_MESSAGE_BYTES: grpc-core refuses it, sizes named, before any handler runs
    raw = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin")
    # RESOURCE_EXHAUSTED "Stream removed" (trailers over the limit) arrives without the service's details.
    assert isinstance(raw, bytes), f"not a status the service built (no google.rpc.Status details): {where}"
    assert len(error.details() or "") <= MAX_MESSAGE_CHARS, f"a message of {len(error.details() or ''):,}: {where}"
    size = metadata_bytes(error)
    if currently_in_test_context():
        target(float(size), label="bytes of trailers")  # hypothesis climbs toward the largest statuses
    assert size <= SOFT_METADATA_LIMIT, f"{size:,} bytes of trailers: refused at random past 8 KiB: {where}"
    status = status_pb2.Status.FromString(raw)
    infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    assert len(infos) == 1, where
    info = error_details_pb2.ErrorInfo()
    infos[0].Unpack(info)
    assert info.domain == DOMAIN and info.reason, where


async def unary_outcome(live: Live, call: Callable[[], Awaitable[object]], *, may_wait: bool = False) -> None:
    try:
        await call()
    except grpc.aio.AioRpcError as error:
        check_status(error, may_wait=may_wait)
    await still_serving(live.stub, live.live_id)


async def stream_outcome(live: Live, call: grpc.aio.UnaryStreamCall[Any, Any], *, may_wait: bool) -> None:
    """The first message, or the status the stream ends with."""
    try:
        first = await call.read()
        assert first is not grpc.aio.EOF or await call.code() == grpc.StatusCode.OK
    except grpc.aio.AioRpcError as error:
        check_status(error, may_wait=may_wait)
    finally:
        call.cancel()
    await still_serving(live.stub, live.live_id)


# -- one property per request type ----------------------------------------------------------------------------
@FUZZ
@given(
    model=st.one_of(STRINGS, st.just("openai:gpt-4o-mini")),
    requests=REQUEST_LISTS,
    completion_window=st.one_of(st.just(""), st.just("24h"), STRINGS),
    metadata=st.one_of(
        st.dictionaries(STRINGS, STRINGS, max_size=4),
        st.builds(lambda n: {f"k{i}": "v" for i in range(n)}, st.sampled_from([14, 15, 16, 17, 1000])),
    ),
    user=st.one_of(st.just(""), STRINGS),
    request_id=st.one_of(st.just(""), st.uuids().map(str), STRINGS),
    caller=CALLERS,
)
async def test_create_batch(
    live: Live,
    model: str,
    requests: list[pb.BatchRequestItem],
    completion_window: str,
    metadata: dict[str, str],
    user: str,
    request_id: str,
    caller: tuple[tuple[str, str], ...],
) -> None:
    request = pb.CreateBatchRequest(
        model=model,
        requests=requests,
        completion_window=completion_window,
        metadata=metadata,
        user=user,
        request_id=request_id,
    )
    await unary_outcome(live, lambda: live.stub.CreateBatch(request, metadata=caller, timeout=CALL_DEADLINE))


@FUZZ
@given(batch_id=IDS, provider=PROVIDERS, caller=CALLERS)
async def test_get_batch(live: Live, batch_id: str, provider: str, caller: tuple[tuple[str, str], ...]) -> None:
    request = pb.GetBatchRequest(batch_id=_real(live, batch_id), provider=provider)
    await unary_outcome(live, lambda: live.stub.GetBatch(request, metadata=caller, timeout=CALL_DEADLINE))


@FUZZ
@given(batch_id=IDS, provider=PROVIDERS, caller=CALLERS)
async def test_cancel_batch(live: Live, batch_id: str, provider: str, caller: tuple[tuple[str, str], ...]) -> None:
    # Never the live batch itself: the other properties need it alive.
    request = pb.CancelBatchRequest(
        batch_id=_real(live, batch_id if batch_id != LIVE_ID else DONE_ID), provider=provider
    )
    await unary_outcome(live, lambda: live.stub.CancelBatch(request, metadata=caller, timeout=CALL_DEADLINE))


@FUZZ
@given(provider=PROVIDERS, page_size=INT32, page_token=TOKENS, caller=CALLERS)
# Found by this test (fixed in tokens): INTERNAL from json.loads's RecursionError.
@example(provider="", page_size=0, page_token=_b64(_nested(3000, "["), padded=False, urlsafe=False), caller=ALICE)
@example(  # the 100,000-character cursor (it reached the store whole): an id is at most 256 characters
    provider="", page_size=0, page_token=_b64(_json(v=1, at=1, seen=1, after="x" * 100_000, provider="")), caller=ALICE
)
@example(  # a number float() cannot hold (OverflowError)
    provider="", page_size=0, page_token=_b64(_json(v=1, at=10**400, seen=1, after="x", provider="")), caller=ALICE
)
async def test_list_batches(
    live: Live, provider: str, page_size: int, page_token: str | TokenOf, caller: tuple[tuple[str, str], ...]
) -> None:
    request = pb.ListBatchesRequest(provider=provider, page_size=page_size, page_token=_token(live, page_token))
    await unary_outcome(live, lambda: live.stub.ListBatches(request, metadata=caller, timeout=CALL_DEADLINE))


@FUZZ
@given(batch_id=IDS, provider=PROVIDERS, duration=DURATIONS, caller=CALLERS)
async def test_wait_batch(
    live: Live,
    batch_id: str,
    provider: str,
    duration: duration_pb2.Duration | None,
    caller: tuple[tuple[str, str], ...],
) -> None:
    request = pb.WaitBatchRequest(batch_id=_real(live, batch_id), provider=provider, timeout=duration)
    await unary_outcome(
        live, lambda: live.stub.WaitBatch(request, metadata=caller, timeout=WAIT_DEADLINE), may_wait=True
    )


@FUZZ
@given(batch_id=IDS, provider=PROVIDERS, start_index=INT64, wait=st.booleans(), caller=CALLERS)
async def test_stream_results(
    live: Live, batch_id: str, provider: str, start_index: int, wait: bool, caller: tuple[tuple[str, str], ...]
) -> None:
    request = pb.StreamResultsRequest(
        batch_id=_real(live, batch_id), provider=provider, start_index=start_index, wait=wait
    )
    call = live.stub.StreamResults(request, metadata=caller, timeout=WAIT_DEADLINE if wait else CALL_DEADLINE)
    await stream_outcome(live, call, may_wait=wait)


@FUZZ
@given(batch_id=IDS, provider=PROVIDERS, resume_token=st.one_of(st.just(""), TOKENS), caller=CALLERS)
# Found by tokens' tests (fixed in tokens): a lone surrogate echoed into "was issued for batch ..." made a status
# that cannot be encoded (UNKNOWN); a revision past SQLite's integers.
@example(
    batch_id=LIVE_ID,
    provider="",
    resume_token=TokenOf({"v": 1, "batch": "\ud800", "rev": 1}, False, True),
    caller=ALICE,
)
@example(
    batch_id=LIVE_ID,
    provider="",
    resume_token=TokenOf({"v": 1, "batch": LIVE_ID, "rev": 2**63}, False, True),
    caller=ALICE,
)
async def test_watch_batch(
    live: Live, batch_id: str, provider: str, resume_token: str | TokenOf, caller: tuple[tuple[str, str], ...]
) -> None:
    request = pb.WatchBatchRequest(
        batch_id=_real(live, batch_id), provider=provider, resume_token=_token(live, resume_token)
    )
    call = live.stub.WatchBatch(request, metadata=caller, timeout=WAIT_DEADLINE)
    await stream_outcome(live, call, may_wait=True)


@FUZZ
@given(
    batch_ids=st.one_of(
        st.lists(IDS, max_size=5),
        st.builds(lambda i, n: [i] * n, IDS, st.sampled_from([2, 1000, 1001])),
    ),
    resume_token=st.one_of(st.just(""), TOKENS),
    caller=CALLERS,
)
async def test_watch_batches(
    live: Live, batch_ids: list[str], resume_token: str | TokenOf, caller: tuple[tuple[str, str], ...]
) -> None:
    request = pb.WatchBatchesRequest(
        batch_ids=[_real(live, i) for i in batch_ids], resume_token=_token(live, resume_token)
    )
    call = live.stub.WatchBatches(request, metadata=caller, timeout=WAIT_DEADLINE)
    await stream_outcome(live, call, may_wait=True)


# -- found by the fuzzer ---------------------------------------------------------------------------------------------
# A status naming 400 four-byte characters was cut by characters (1.6 KB, 4.7 KB percent-encoded in grpc-message)
# and, with the details, passed the 8 KiB soft limit: cut by bytes now.
async def test_a_status_naming_four_byte_characters_still_fits(live: Live) -> None:
    body = _struct({"messages": [{"role": "user", "content": "hi"}], "🙂" * 5_000: math.nan})
    items = [pb.BatchRequestItem(custom_id=f"c{i}", body=body) for i in range(100)]
    request = pb.CreateBatchRequest(model="openai:gpt-4o-mini", requests=items)
    await unary_outcome(live, lambda: live.stub.CreateBatch(request, metadata=ALICE, timeout=CALL_DEADLINE))
