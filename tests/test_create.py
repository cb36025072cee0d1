"""CreateBatch through a real channel: the happy path, and every validation rule enforced before the gateway."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from otari_batch_grpc.v1 import batch_pb2
from otari_batch_grpc.v1 import batch_service_pb2 as pb
from tests.conftest import ALICE, MASTER, Sim, body, create_request, details

if TYPE_CHECKING:
    from otari_batch_grpc.v1.batch_service_pb2_grpc import BatchServiceAsyncStub as Stub

# The gateway-facing core runs against both API roots the otari ecosystem serves.
ROOT = Path(__file__).resolve().parent.parent
BOTH_API_ROOTS = True


async def test_create_returns_the_gateways_batch(stub: Stub, sim: Sim) -> None:
    request = create_request(3, metadata={"suite": "proof"}, completion_window="24h")
    reply = await stub.CreateBatch(request, metadata=ALICE)
    batch = reply.batch
    assert batch.id.startswith("batch_")
    assert batch.status == batch_pb2.BATCH_STATUS_VALIDATING
    assert batch.upstream_status == "validating"
    assert batch.provider == "openai"
    assert batch.model == "gpt-4o-mini"
    assert batch.endpoint == "/v1/chat/completions"
    assert batch.completion_window == "24h"
    assert dict(batch.metadata) == {"suite": "proof"}  # as the caller set it: the stamps are fields of their own
    assert batch.user == "alice" and batch.request_id == ""
    assert batch.created_at.seconds > 0 and batch.expires_at.seconds == batch.created_at.seconds + 86400
    assert not batch.HasField("output_file_id")
    stored = sim.state.batches[batch.id]
    assert [r["custom_id"] for r in stored.requests] == ["req-0", "req-1", "req-2"]
    # Struct numbers are doubles; the gateway must still receive integers where the caller wrote integers.
    assert stored.requests[0]["body"]["max_tokens"] == 16
    assert isinstance(stored.requests[0]["body"]["max_tokens"], int)


async def test_body_json_reaches_the_gateway_as_written(stub: Stub, sim: Sim) -> None:
    exact = 2**60 + 1  # a Struct (a double) would round it
    content = 'caf\u00e9 "quoted"'
    text = json.dumps({"messages": [{"role": "user", "content": content}], "max_tokens": 16, "seed": exact})
    request = pb.CreateBatchRequest(
        model="openai:gpt-4o-mini",
        requests=[
            pb.BatchRequestItem(custom_id='json "one"', body_json=text),
            pb.BatchRequestItem(custom_id="struct", body=body("two")),
        ],
    )
    batch = (await stub.CreateBatch(request, metadata=ALICE)).batch
    stored = sim.state.batches[batch.id].requests
    assert [r["custom_id"] for r in stored] == ['json "one"', "struct"]
    assert stored[0]["body"]["seed"] == exact
    assert stored[0]["body"]["messages"][0]["content"] == 'café "quoted"'
    assert stored[1]["body"]["messages"][0]["content"] == "two"


BAD_JSON = [
    ("not JSON", '{"messages": [}', "is not valid JSON"),
    ("two values", '{"a": 1} {"b": 2}', "is not valid JSON"),
    ("an array", '[{"messages": []}]', "must be a JSON object"),
    ("a string", '"hello"', "must be a JSON object"),
    ("empty object", " { } ", "is required"),
    ("NaN token", '{"temperature": NaN}', "is not valid JSON"),
    ("infinite number", '{"temperature": 1e999}', "finite"),
    ("infinite negative number", '{"t": [-12.5E+0400]}', "finite"),
    ("400 digits", '{"t": ' + "1" * 400 + ".5}", "finite"),
    ("5,000-digit integer", '{"t": ' + "7" * 5_000 + "}", "finite"),
    ("nested 3,000 deep", '{"a": ' + "[" * 3_000 + "]" * 3_000 + "}", "nests deeper"),
    ("nested 65 deep", '{"a": ' + "[" * 64 + "]" * 64 + "}", "nests deeper"),
    ("a lone surrogate", '{"a": "\\ud800"}', "surrogate"),
]


@pytest.mark.parametrize(("case", "text", "says"), BAD_JSON, ids=[c[0] for c in BAD_JSON])
async def test_a_bad_body_json_is_refused_with_its_field_path(
    stub: Stub, sim: Sim, case: str, text: str, says: str
) -> None:
    request = create_request(3)
    request.requests[2].body_json = text
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBatch(request, metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = details(caught.value)
    assert found.fields == ["requests[2].body_json"]
    assert found.bad_request is not None and says in found.bad_request.field_violations[0].description
    assert await sim.requests_seen("create") == 0


async def test_exponents_that_fit_a_double_and_text_that_looks_like_one_are_fine(stub: Stub, sim: Sim) -> None:
    request = create_request(1)
    digits = "9" * 400
    request.requests[0].body_json = (
        '{"messages": [{"role": "user", "content": "1e999 is big '
        + digits
        + '"}], "t": 1e+300, "n": '
        + "[" * 60
        + "]" * 60
        + "}"
    )
    batch = (await stub.CreateBatch(request, metadata=ALICE)).batch
    assert sim.state.batches[batch.id].requests[0]["body"]["t"] == 1e300


async def test_empty_completion_window_means_24h(stub: Stub, sim: Sim) -> None:
    reply = await stub.CreateBatch(create_request(1), metadata=ALICE)
    assert reply.batch.completion_window == "24h"


async def test_slash_model_form_is_accepted(stub: Stub) -> None:
    reply = await stub.CreateBatch(create_request(1, model="openai/gpt-4o-mini"), metadata=ALICE)
    assert reply.batch.model == "gpt-4o-mini"


async def test_master_key_creates_for_a_named_user(stub: Stub) -> None:
    reply = await stub.CreateBatch(create_request(1, user="bob"), metadata=MASTER)
    assert reply.batch.user == "bob"


async def test_master_key_without_user_is_invalid_argument(stub: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBatch(create_request(1), metadata=MASTER)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(caught.value).fields == ["user"]


async def test_full_batch_of_10000_requests_with_1kib_bodies(stub: Stub, sim: Sim) -> None:
    filler = "x" * 1024
    requests = [pb.BatchRequestItem(custom_id=f"r{i}", body=body(filler)) for i in range(10_000)]
    reply = await stub.CreateBatch(pb.CreateBatchRequest(model="openai:gpt-4o-mini", requests=requests), metadata=ALICE)
    assert len(sim.state.batches[reply.batch.id].requests) == 10_000


def _items(n: int) -> list[pb.BatchRequestItem]:
    return [pb.BatchRequestItem(custom_id=f"r{i}", body=body()) for i in range(n)]


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("no model", {"model": ""}, "model"),
    ("model without provider", {"model": "gpt-4o-mini"}, "model"),
    ("model with empty name", {"model": "openai:"}, "model"),
    ("no requests", {"requests": []}, "requests"),
    ("missing custom_id", {"requests": [pb.BatchRequestItem(body=body())]}, "requests[0].custom_id"),
    (
        "duplicate custom_id",
        {
            "requests": [
                pb.BatchRequestItem(custom_id="a", body=body()),
                pb.BatchRequestItem(custom_id="a", body=body()),
            ]
        },
        "requests[1].custom_id",
    ),
    (
        "custom_id too long",
        {"requests": [pb.BatchRequestItem(custom_id="c" * 513, body=body())]},
        "requests[0].custom_id",
    ),
    ("empty body", {"requests": [pb.BatchRequestItem(custom_id="a")]}, "requests[0].body"),
    ("empty body_json", {"requests": [pb.BatchRequestItem(custom_id="a", body_json="")]}, "requests[0].body_json"),
    ("15 metadata pairs", {"metadata": {f"k{i}": "v" for i in range(15)}}, "metadata"),
    ("metadata key too long", {"metadata": {"k" * 65: "v"}}, f"metadata[{'k' * 65}]"),
    ("metadata value too long", {"metadata": {"k": "v" * 513}}, "metadata[k]"),
    ("reserved metadata key", {"metadata": {"otari_user_id": "mallory"}}, "metadata[otari_user_id]"),
    ("blank completion window", {"completion_window": "  "}, "completion_window"),
    ("huge completion window", {"completion_window": "w" * 100_000}, "completion_window"),
    ("user with spaces", {"user": "a user"}, "user"),
    ("huge user", {"user": "u" * 100_000}, "user"),
]


@pytest.mark.parametrize(("case", "fields", "field"), INVALID, ids=[c[0] for c in INVALID])
async def test_invalid_create_is_refused_before_the_gateway(
    stub: Stub, sim: Sim, case: str, fields: dict[str, Any], field: str
) -> None:
    request = create_request(1)
    for name, value in fields.items():
        request.ClearField(name)  # type: ignore[arg-type]
        if isinstance(value, list):
            getattr(request, name).extend(value)
        elif isinstance(value, dict):
            getattr(request, name).update(value)
        else:
            setattr(request, name, value)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBatch(request, metadata=ALICE)
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = details(error)
    assert found.fields[0] == field
    assert found.info is not None and found.info.reason == "INVALID_REQUEST"
    assert found.info.domain == "batch.otari.mozilla.ai"
    assert field in (error.details() or "")
    assert await sim.requests_seen("create") == 0


async def test_14_metadata_pairs_are_the_most_a_caller_can_set_as_the_contract_says(stub: Stub) -> None:
    """The provider keeps 16; the gateway stamps one, this service one more (a request_id, or a part's stamp)."""
    fourteen = {f"k{i}": "v" for i in range(14)}
    reply = await stub.CreateBatch(create_request(1, metadata=fourteen), metadata=ALICE)
    assert dict(reply.batch.metadata) == fourteen and reply.batch.user == "alice"  # the gateway's stamp is `user`
    reply = await stub.CreateBatch(create_request(1, metadata=fourteen, request_id=str(uuid.uuid4())), metadata=ALICE)
    assert dict(reply.batch.metadata) == fourteen
    for request_id in ("", str(uuid.uuid4())):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateBatch(
                create_request(1, metadata={**fourteen, "k14": "v"}, request_id=request_id), metadata=ALICE
            )
        assert "at most 14 pairs, got 15" in (caught.value.details() or "")
    contract = (ROOT / "protos/otari/batch/v1/batch_service.proto").read_text()
    assert "At most 14 pairs" in " ".join(contract.replace("//", " ").split())


async def test_the_message_counts_the_violations_the_details_list(stub: Stub) -> None:
    many = {f"{i:04d}" + "k" * 70: "v" for i in range(5000)}  # each key too long: 5,001 violations in all
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBatch(create_request(1, metadata=many), metadata=ALICE)
    listed = len(details(caught.value).fields)
    assert 1 < listed < 5001
    assert f"(and 5000 more; BadRequest details list the first {listed})" in (caught.value.details() or "")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBatch(create_request(1, metadata={"k" * 65: "v", "otari_user_id": "x"}), metadata=ALICE)
    assert len(details(caught.value).fields) == 2
    assert "(and 1 more: see BadRequest details)" in (caught.value.details() or "")


async def test_every_violation_is_reported_at_once(stub: Stub) -> None:
    request = pb.CreateBatchRequest(model="nope", requests=[pb.BatchRequestItem(custom_id="", body=body())])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBatch(request, metadata=ALICE)
    assert details(caught.value).fields == ["model", "requests[0].custom_id"]


async def test_provider_without_batch_support_is_invalid_argument(stub: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBatch(create_request(1, model="groq:llama-3"), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "does not support batch" in (caught.value.details() or "")


async def test_unknown_provider_in_model_is_invalid_argument(stub: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBatch(create_request(1, model="nosuch:model"), metadata=ALICE)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(caught.value).fields == ["model"]


async def test_bodies_that_would_join_into_other_values_are_each_refused(stub: Stub, sim: Sim) -> None:
    # Parsed as one array, `{"a":"` and `"},{"b":1}` would read as two objects: each body is checked as itself.
    request = create_request(3)
    request.requests[0].body_json = '{"a":"'
    request.requests[1].body_json = '"},{"b":1}'
    request.requests[2].body_json = '  {"messages": []}  '  # whitespace around a good body is fine
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBatch(request, metadata=ALICE)
    assert details(caught.value).fields == ["requests[0].body_json", "requests[1].body_json"]
    assert await sim.requests_seen("create") == 0


async def test_bodies_that_line_up_only_by_character_count_are_each_refused(stub: Stub, sim: Sim) -> None:
    # Two values spread over two bodies whose lengths in characters (not bytes) match the values': each body is
    # still checked as itself (found by review: the check once compared byte and character lengths).
    request = create_request(2)
    request.requests[0].body_json = '{"a":"' + "é" * 8 + '"},{"b":[1'
    request.requests[1].body_json = '{"c":2}]}' + " " * 8
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateBatch(request, metadata=ALICE)
    assert details(caught.value).fields == ["requests[0].body_json", "requests[1].body_json"]
    assert await sim.requests_seen("create") == 0


def test_non_ascii_bodies_and_numbers_a_double_holds_are_fine() -> None:
    from otari_batch_grpc.server.edge import validation

    texts = [
        json.dumps({"messages": [{"role": "user", "content": f"héllo wörld {i} 😀"}]}, ensure_ascii=False)
        for i in range(50)
    ]
    texts += ['  {"a": "ß"}\n', '{"t": [' + ",".join(["9" * 308] * 3_000) + "]}", '{"t": 1e308, "u": 1e-999}']
    items = [pb.BatchRequestItem(custom_id=f"r{i}", body_json=text) for i, text in enumerate(texts)]
    validation.check_create(pb.CreateBatchRequest(model="openai:gpt-4o-mini", requests=items))


async def test_a_validating_batch_counts_the_requests_sent(stub: Stub, sim: Sim) -> None:
    """The gateway counts 0 requests while validating; the service sent them and says how many."""
    created = (await stub.CreateBatch(create_request(3, request_id=str(uuid.uuid4())), metadata=ALICE)).batch
    assert created.status == batch_pb2.BATCH_STATUS_VALIDATING
    assert sim.state.batches[created.id] and created.request_counts.total == 3
    got = (await stub.GetBatch(pb.GetBatchRequest(batch_id=created.id), metadata=ALICE)).batch
    assert (got.status, got.request_counts.total) == (batch_pb2.BATCH_STATUS_VALIDATING, 3)
    async for message in stub.WatchBatch(pb.WatchBatchRequest(batch_id=created.id), metadata=ALICE):
        assert message.event.batch.request_counts.total == 3
        break
    plain = (await stub.CreateBatch(create_request(2), metadata=ALICE)).batch  # no request_id: the same
    assert plain.request_counts.total == 2
