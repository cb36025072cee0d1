"""The gateway simulator on its own, over real HTTP on loopback: persistence across restarts, both API roots,
the real gateway's credential headers, budget refusals, response headers and owner-filtered list pages."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from otari_batch_grpc.simulator.run import running_simulator
from otari_batch_grpc.simulator.state import SimState
from otari_batch_grpc.simulator.state_file import StateFileError
from tests.conftest import Sim, eventually, http_client

ALICE = {"authorization": "Bearer sim-key-alice"}
BOB = {"authorization": "Bearer sim-key-bob"}
MASTER = {"authorization": "Bearer sim-master-key"}
OPENAI = {"provider": "openai"}
MISSING = "Missing Otari-Key, Authorization, or x-api-key header"


def batch_body(n: int = 2, **extra: Any) -> dict[str, Any]:
    requests = [
        {"custom_id": f"req-{i}", "body": {"messages": [{"role": "user", "content": f"question {i}"}]}}
        for i in range(n)
    ]
    return {"model": "openai:gpt-4o-mini", "requests": requests, **extra}


@contextlib.asynccontextmanager
async def serving(state: SimState) -> AsyncIterator[httpx.AsyncClient]:
    """The simulator over `state` on a loopback port, and a client for it (base URL without the API root)."""
    async with running_simulator(state) as url, http_client(base_url=url) as http:
        yield http


async def create(http: httpx.AsyncClient, headers: dict[str, str], root: str = "/v1", **extra: Any) -> str:
    reply = await http.post(f"{root}/batches", json=batch_body(**extra), headers=headers)
    assert reply.status_code == 200, reply.text
    batch_id: str = reply.json()["id"]
    return batch_id


async def get(http: httpx.AsyncClient, batch_id: str, headers: dict[str, str] = ALICE) -> dict[str, Any]:
    reply = await http.get(f"/v1/batches/{batch_id}", params=OPENAI, headers=headers)
    assert reply.status_code == 200, reply.text
    data: dict[str, Any] = reply.json()
    return data


def names_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- persistence ---------------------------------------------------------------------------------------------


async def test_batches_statuses_and_results_survive_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "state.simulator.json"
    async with serving(SimState(stage_seconds=3600, state_file=state_file)) as http:
        waiting = await create(http, ALICE, metadata={"team": "search"})
        cancelling = await create(http, ALICE)
        assert (await http.post(f"/v1/batches/{cancelling}/cancel", params=OPENAI, headers=ALICE)).status_code == 200
        done = await create(http, BOB, n=3)
        (await http.post(f"/_simulator/batches/{done}/status", json={"status": "completed"})).raise_for_status()
        before = {i: await get(http, i, MASTER) for i in (waiting, cancelling, done)}
        results_before = (await http.get(f"/v1/batches/{done}/results", params=OPENAI, headers=BOB)).json()
        listed_before = (await http.get("/v1/batches", params=OPENAI, headers=MASTER)).json()

    restarted = SimState(stage_seconds=3600, state_file=state_file)
    assert restarted.order == [waiting, cancelling, done]
    async with serving(restarted) as http:
        assert {i: await get(http, i, MASTER) for i in (waiting, cancelling, done)} == before
        assert before[waiting]["status"] == "validating"
        assert before[waiting]["metadata"] == {"team": "search", "otari_user_id": "alice"}
        assert before[cancelling]["status"] == "cancelling"
        assert before[done]["status"] == "completed"
        results = await http.get(f"/v1/batches/{done}/results", params=OPENAI, headers=BOB)
        assert results.json() == results_before and len(results_before["results"]) == 3
        assert (await http.get("/v1/batches", params=OPENAI, headers=MASTER)).json() == listed_before
        # Ownership survives too: alice still cannot see bob's batch.
        assert (await http.get(f"/v1/batches/{done}", params=OPENAI, headers=ALICE)).status_code == 404
        # And the restarted simulator keeps adding to the file.
        later = await create(http, BOB)
    assert SimState(state_file=state_file).order == [waiting, cancelling, done, later]


async def test_a_restart_with_another_stage_length_does_not_move_recorded_batches(tmp_path: Path) -> None:
    state_file = tmp_path / "sim.json"
    async with serving(SimState(stage_seconds=0, state_file=state_file)) as http:
        done = await create(http, ALICE)
        assert (await get(http, done))["status"] == "completed"
    # A completed batch (whose results a service may have cached) must not go back to validating.
    async with serving(SimState(stage_seconds=3600, state_file=state_file)) as http:
        assert (await get(http, done))["status"] == "completed"
        fresh = await create(http, ALICE)
        assert (await get(http, fresh))["status"] == "validating"
        timeline = (await http.get(f"/_simulator/batches/{done}/timeline")).json()
        assert timeline["completed"] == timeline["validating"]


async def test_every_change_is_in_the_file_when_its_reply_arrives(tmp_path: Path) -> None:
    state_file = tmp_path / "nested" / "dir" / "sim.json"  # the directory is made on the first write
    state = SimState(stage_seconds=3600, state_file=state_file)
    async with serving(state) as http:
        assert not state_file.exists()
        batch_id = await create(http, ALICE)
        saved = json.loads(state_file.read_text())
        assert [b["id"] for b in saved["batches"]] == [batch_id]
        assert saved["batches"][0]["cancel_at"] is None
        await http.post(f"/v1/batches/{batch_id}/cancel", params=OPENAI, headers=ALICE)
        assert json.loads(state_file.read_text())["batches"][0]["cancel_at"] is not None
        (await http.post(f"/_simulator/batches/{batch_id}/status", json={"status": "failed"})).raise_for_status()
        assert json.loads(state_file.read_text())["batches"][0]["forced"] == "failed"
        (await http.post("/_simulator/clock", json={"stage_seconds": 7})).raise_for_status()
        assert json.loads(state_file.read_text())["stage_seconds"] == 7
    assert names_in(state_file.parent) == ["sim.json"]  # no temporary files left


async def test_concurrent_creates_are_all_kept(tmp_path: Path) -> None:
    state_file = tmp_path / "sim.json"
    async with serving(SimState(stage_seconds=3600, state_file=state_file)) as http:
        ids = await asyncio.gather(*(create(http, ALICE if i % 2 else BOB) for i in range(40)))
    restarted = SimState(state_file=state_file)
    assert sorted(restarted.order) == sorted(ids)
    assert {restarted.batches[i].owner for i in ids} == {"alice", "bob"}


async def test_without_a_state_file_nothing_is_written(tmp_path: Path) -> None:
    async with serving(SimState(stage_seconds=3600)) as http:
        await create(http, ALICE)
    assert names_in(tmp_path) == []


async def test_open_loads_the_state_file_off_the_event_loop(tmp_path: Path) -> None:
    state_file = tmp_path / "sim.json"
    async with serving(SimState(stage_seconds=3600, state_file=state_file)) as http:
        batch_id = await create(http, ALICE)
    state = await SimState.open(stage_seconds=3600, state_file=state_file, api_root="/api/v1")
    assert (state.order, state.api_root) == ([batch_id], "/api/v1")
    with pytest.raises(StateFileError):
        await SimState.open(state_file=tmp_path)  # a directory is no state file


def test_a_missing_state_file_is_an_empty_simulator(tmp_path: Path) -> None:
    state = SimState(state_file=tmp_path / "absent.json")
    assert state.batches == {} and state.order == []


@pytest.mark.parametrize("content", ["{not json", '{"version": 99, "stage_seconds": 5, "batches": []}', "[]"])
def test_an_unusable_state_file_is_refused_at_start(tmp_path: Path, content: str) -> None:
    state_file = tmp_path / "sim.json"
    state_file.write_text(content)
    with pytest.raises(StateFileError, match="not usable"):
        SimState(state_file=state_file)
    assert isinstance(StateFileError("x"), OSError)  # the server's startup handler already reports OSError


# -- API roots -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("root", "other"), [("/v1", "/api/v1"), ("/api/v1", "/v1")])
async def test_the_batch_routes_are_served_under_the_chosen_root_only(root: str, other: str) -> None:
    async with serving(SimState(stage_seconds=3600, api_root=root)) as http:
        batch_id = await create(http, ALICE, root=root)
        assert (await http.get(f"{root}/batches/{batch_id}", params=OPENAI, headers=ALICE)).json()["id"] == batch_id
        listed = await http.get(f"{root}/batches", params=OPENAI, headers=ALICE)
        assert [b["id"] for b in listed.json()["data"]] == [batch_id]
        results = await http.get(f"{root}/batches/{batch_id}/results", params=OPENAI, headers=ALICE)
        assert results.status_code == 409
        assert results.json()["detail"] == (
            f"Batch '{batch_id}' is not yet complete (status: validating). "
            f"Call GET {root}/batches/{batch_id}?provider=openai to check the current status."
        )
        cancelled = await http.post(f"{root}/batches/{batch_id}/cancel", params=OPENAI, headers=ALICE)
        assert cancelled.json()["status"] == "cancelling"

        for method, path in [
            ("POST", f"{other}/batches"),
            ("GET", f"{other}/batches"),
            ("GET", f"{other}/batches/{batch_id}"),
            ("POST", f"{other}/batches/{batch_id}/cancel"),
            ("GET", f"{other}/batches/{batch_id}/results"),
        ]:
            reply = await http.request(method, path, params=OPENAI, headers=ALICE, json=batch_body())
            assert (reply.status_code, reply.json()) == (404, {"detail": "Not Found"}), (method, path)
        # The control routes and the health probe do not move with the root.
        assert (await http.get("/health/liveness")).status_code == 200
        assert (await http.get("/_simulator/stats")).status_code == 200


@pytest.mark.parametrize("root", ["api/v1/", "/api/v1/"])
def test_the_root_is_normalized(root: str) -> None:
    assert SimState(api_root=root).api_root == "/api/v1"


def test_an_unknown_root_is_refused() -> None:
    with pytest.raises(ValueError, match="api_root"):
        SimState(api_root="/v2")


# -- credentials (mozilla-ai/otari src/gateway/api/deps.py extract_credential_token) -------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": "Bearer sim-key-alice"},
        {"otari-key": "sim-key-alice"},
        {"otari-key": "Bearer sim-key-alice"},
        {"x-api-key": "sim-key-alice"},
        {"authorization": "Bearer   sim-key-alice"},  # the token is stripped after the scheme
        {"otari-key": "", "authorization": "Bearer sim-key-alice"},  # an empty header is an absent one
    ],
    ids=["authorization", "otari-key", "otari-key-bearer", "x-api-key", "authorization-spaces", "otari-key-empty"],
)
async def test_every_accepted_header_form_works(sim: Sim, headers: dict[str, str]) -> None:
    reply = await sim.http.post("/v1/batches", json=batch_body(1), headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.json()["metadata"]["otari_user_id"] == "alice"


async def test_otari_key_wins_over_authorization_and_authorization_over_x_api_key(sim: Sim) -> None:
    # The real gateway reads one credential: Otari-Key if present, else Authorization, else x-api-key.
    reply = await sim.http.post(
        "/v1/batches",
        json=batch_body(1),
        headers={"otari-key": "sim-key-bob", "authorization": "Bearer sim-key-alice", "x-api-key": "nope"},
    )
    assert reply.json()["metadata"]["otari_user_id"] == "bob"
    # An Authorization that is not a key of this gateway (a platform token, say) beside an Otari-Key: the
    # Otari-Key alone decides. There is no separate platform-token mode on the client side.
    reply = await sim.http.post(
        "/v1/batches",
        json=batch_body(1),
        headers={"authorization": "Bearer some-platform-token", "otari-key": "Bearer sim-key-alice"},
    )
    assert reply.json()["metadata"]["otari_user_id"] == "alice"
    reply = await sim.http.post(
        "/v1/batches", json=batch_body(1), headers={"authorization": "Bearer sim-key-alice", "x-api-key": "nope"}
    )
    assert reply.json()["metadata"]["otari_user_id"] == "alice"
    # The first header present decides: a malformed Authorization is not rescued by a good x-api-key.
    reply = await sim.http.post(
        "/v1/batches", json=batch_body(1), headers={"authorization": "sim-key-alice", "x-api-key": "sim-key-alice"}
    )
    assert reply.status_code == 401


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "Missing Otari-Key, Authorization, or x-api-key header"),
        (
            {"otari-key": "", "authorization": "", "x-api-key": ""},
            "Missing Otari-Key, Authorization, or x-api-key header",
        ),
        ({"authorization": "Bearer"}, "Invalid header format. Expected 'Bearer <token>'"),
        ({"authorization": "sim-key-alice"}, "Invalid header format. Expected 'Bearer <token>'"),
        ({"authorization": "Basic c2ltOmtleQ=="}, "Invalid header format. Expected 'Bearer <token>'"),
        ({"authorization": "Bearer nope"}, "Invalid API key"),
        ({"otari-key": "nope"}, "Invalid API key"),
        ({"x-api-key": "nope"}, "Invalid API key"),
    ],
)
async def test_refused_credentials_answer_as_the_gateway_does(sim: Sim, headers: dict[str, str], detail: str) -> None:
    reply = await sim.http.get("/v1/batches", params=OPENAI, headers=headers)
    assert (reply.status_code, reply.json()) == (401, {"detail": detail})


# -- keys and users (GATEWAY-CONTRACT.md: revocation, blocking, deletion) -------------------------------------


async def test_a_deactivated_key_answers_inactive_everywhere_and_works_again_once_reactivated(sim: Sim) -> None:
    key_id, key = await sim.new_key("carol")
    carol = {"authorization": f"Bearer {key}"}
    batch_id = await create(sim.http, carol)
    await sim.set_key_active(key_id, False)
    inactive = (401, {"detail": "API key is inactive"})
    for reply in (
        await sim.http.get("/v1/batches", headers=carol),  # the cheap key check too
        await sim.http.get("/v1/batches", params=OPENAI, headers=carol),
        await sim.http.get(f"/v1/batches/{batch_id}", params=OPENAI, headers=carol),
        await sim.http.get(f"/v1/batches/{batch_id}/results", params=OPENAI, headers=carol),
        await sim.http.post(f"/v1/batches/{batch_id}/cancel", params=OPENAI, headers=carol),
        await sim.http.post("/v1/batches", json=batch_body(), headers=carol),
    ):
        assert (reply.status_code, reply.json()) == inactive
    _, second = await sim.new_key("carol")  # the user's other keys go on
    assert (await get(sim.http, batch_id, {"authorization": f"Bearer {second}"}))["id"] == batch_id
    await sim.set_key_active(key_id, True)
    assert (await get(sim.http, batch_id, carol))["id"] == batch_id


async def test_a_deleted_users_keys_answer_inactive_and_the_master_key_cannot_name_it(sim: Sim) -> None:
    _, key = await sim.new_key("dave")
    dave = {"authorization": f"Bearer {key}"}
    await create(sim.http, dave)
    await sim.delete_user("dave")
    reply = await sim.http.get("/v1/batches", params=OPENAI, headers=dave)
    assert (reply.status_code, reply.json()) == (401, {"detail": "API key is inactive"})
    reply = await sim.http.post("/v1/batches", json=batch_body(user="dave"), headers=MASTER)
    assert (reply.status_code, reply.json()) == (404, {"detail": "User 'dave' not found"})
    reply = await sim.http.post("/v1/batches", json=batch_body(user="nobody"), headers=MASTER)
    assert (reply.status_code, reply.json()) == (404, {"detail": "User 'nobody' not found"})


async def test_a_blocked_user_reads_but_cannot_create(sim: Sim) -> None:
    kept = await create(sim.http, ALICE)
    await sim.block_user("alice")
    reply = await sim.http.post("/v1/batches", json=batch_body(), headers=ALICE)
    assert (reply.status_code, reply.json()) == (403, {"detail": "User 'alice' is blocked"})
    reply = await sim.http.post("/v1/batches", json=batch_body(user="alice"), headers=MASTER)
    assert (reply.status_code, reply.json()) == (403, {"detail": "User 'alice' is blocked"})
    assert (await get(sim.http, kept))["id"] == kept
    assert (await sim.http.get("/v1/batches", params=OPENAI, headers=ALICE)).status_code == 200
    await sim.block_user("alice", False)
    await create(sim.http, ALICE)


async def test_keys_and_users_are_managed_with_the_master_key_only(sim: Sim) -> None:
    reply = await sim.http.post("/v1/keys", json={"user_id": "erin"}, headers=ALICE)
    assert reply.status_code == 403
    reply = await sim.http.patch("/v1/keys/key-alice", json={"is_active": False}, headers=BOB)
    assert reply.status_code == 403
    reply = await sim.http.patch("/v1/keys/no-such-key", json={"is_active": False}, headers=MASTER)
    assert reply.status_code == 404
    assert (await sim.http.delete("/v1/users/nobody", headers=MASTER)).status_code == 404


# -- budget refusals -----------------------------------------------------------------------------------------


async def test_a_spent_budget_refuses_creates_with_403_as_the_gateway_words_it(sim: Sim) -> None:
    kept = await create(sim.http, ALICE)
    await sim.refuse_budget(403, user="alice")
    reply = await sim.http.post("/v1/batches", json=batch_body(), headers=ALICE)
    assert (reply.status_code, reply.json()) == (403, {"detail": "User 'alice' has exceeded budget limit"})
    assert reply.headers["otari-error-code"] == "budget_exceeded"
    assert reply.headers["otari-budget-scope"] == "user"
    # Only creates reserve budget: alice still reads, lists, cancels; bob is not refused.
    assert (await get(sim.http, kept))["id"] == kept
    assert (await sim.http.get("/v1/batches", params=OPENAI, headers=ALICE)).status_code == 200
    assert (await sim.http.post(f"/v1/batches/{kept}/cancel", params=OPENAI, headers=ALICE)).status_code == 200
    await create(sim.http, BOB)
    # The master key bills the named user, whose budget is the one refused.
    reply = await sim.http.post("/v1/batches", json=batch_body(user="alice"), headers=MASTER)
    assert (reply.status_code, reply.json()["detail"]) == (403, "User 'alice' has exceeded budget limit")
    assert len(sim.state.batches) == 2  # nothing was created by the refused calls

    await sim.clear_budget("alice")
    await create(sim.http, ALICE)


async def test_payment_required_answers_402_with_the_platform_detail_or_the_gateway_fallback(sim: Sim) -> None:
    await sim.refuse_budget(402)  # every user
    for headers in (ALICE, BOB):
        reply = await sim.http.post("/v1/batches", json=batch_body(), headers=headers)
        assert (reply.status_code, reply.json()) == (402, {"detail": "Authorization request rejected"})
        assert "otari-error-code" not in reply.headers
    await sim.refuse_budget(402, user="bob", detail="Insufficient credits")
    reply = await sim.http.post("/v1/batches", json=batch_body(), headers=BOB)
    assert (reply.status_code, reply.json()) == (402, {"detail": "Insufficient credits"})
    listed = (await sim.http.get("/_simulator/budget")).json()["budget_refusals"]
    assert listed == {"*": {"status": 402, "detail": None}, "bob": {"status": 402, "detail": "Insufficient credits"}}
    await sim.clear_budget()
    await create(sim.http, ALICE)
    await create(sim.http, BOB)


async def test_budget_checks_come_after_request_checks(sim: Sim) -> None:
    await sim.refuse_budget(403)
    reply = await sim.http.post("/v1/batches", json=batch_body(model="gpt-4o-mini"), headers=ALICE)
    assert reply.status_code == 400  # the model is resolved before the budget is reserved
    reply = await sim.http.post("/v1/batches", json=batch_body(), headers={"authorization": "Bearer nope"})
    assert reply.status_code == 401


@pytest.mark.parametrize("spec", [{"status": 500}, {"status": 429}, {"status": "soon"}])
async def test_only_402_and_403_budget_refusals_exist(sim: Sim, spec: dict[str, Any]) -> None:
    assert (await sim.http.post("/_simulator/budget", json=spec)).status_code == 422


# -- response headers ----------------------------------------------------------------------------------------


async def test_batch_replies_carry_the_gateway_headers_and_no_attempt_id(sim: Sim) -> None:
    # Otari-Attempt-ID (and Otari-Request-ID) come only on hybrid-mode inference replies (chat, messages,
    # responses), echoing the platform's attempt; the batch routes never send them.
    reply = await sim.http.post("/v1/batches", json=batch_body(), headers=ALICE)
    assert reply.headers["vary"] == "Authorization"
    assert reply.headers["cache-control"] == "private, no-store, no-cache"
    assert "otari-attempt-id" not in reply.headers and "otari-request-id" not in reply.headers


# -- owner-filtered list pages -------------------------------------------------------------------------------


async def test_a_page_of_other_users_batches_comes_back_empty(sim: Sim) -> None:
    mine = await create(sim.http, ALICE)
    bobs = [await create(sim.http, BOB) for _ in range(3)]

    page = await sim.http.get("/v1/batches", params={**OPENAI, "limit": 3}, headers=ALICE)
    assert page.status_code == 200
    assert page.json() == {"data": []}  # no cursor, no has_more: nothing says alice has an older batch

    # The provider's page is every user's batches, newest first; the owner filter comes after it.
    page = await sim.http.get("/v1/batches", params={**OPENAI, "limit": 4}, headers=ALICE)
    assert [b["id"] for b in page.json()["data"]] == [mine]
    page = await sim.http.get("/v1/batches", params={**OPENAI, "limit": 3}, headers=BOB)
    assert [b["id"] for b in page.json()["data"]] == bobs[::-1]
    page = await sim.http.get("/v1/batches", params={**OPENAI, "limit": 2, "after": bobs[1]}, headers=ALICE)
    assert [b["id"] for b in page.json()["data"]] == [mine]
    page = await sim.http.get("/v1/batches", params={**OPENAI, "limit": 1, "after": bobs[2]}, headers=ALICE)
    assert page.json() == {"data": []}
    page = await sim.http.get("/v1/batches", params={**OPENAI, "limit": 10}, headers=MASTER)
    assert [b["id"] for b in page.json()["data"]] == [*bobs[::-1], mine]
    # Another provider's page holds none of them.
    page = await sim.http.get("/v1/batches", params={"provider": "anthropic", "limit": 10}, headers=MASTER)
    assert page.json() == {"data": []}


@pytest.mark.parametrize("op", ["list", "cancel"])
async def test_a_late_answer_shows_the_state_it_was_read_at(sim: Sim, op: str) -> None:
    """answer_delay holds an answer on its way: a change made meanwhile is not in it (any route, not GET alone)."""
    first = await create(sim.http, ALICE)
    await sim.fault(op=op, answer_delay=0.5, times=1)
    late = asyncio.ensure_future(
        sim.http.get("/v1/batches", params={**OPENAI, "limit": 10}, headers=ALICE)
        if op == "list"
        else sim.http.post(f"/v1/batches/{first}/cancel", params=OPENAI, headers=ALICE)
    )
    await eventually(lambda: _seen(sim, op))  # read, its answer on its way
    newer = await create(sim.http, ALICE)
    await sim.force(first, "completed")
    assert not late.done()  # held: the changes above came after it was read, before it arrived
    answer = (await late).json()
    if op == "list":
        assert [b["id"] for b in answer["data"]] == [first]  # not `newer`, made after it was read
    else:
        assert answer["status"] == "cancelling"  # not the completed it was forced to since
    assert newer in sim.state.batches


async def _seen(sim: Sim, op: str) -> bool:
    return await sim.requests_seen(op) > 0


# -- pace: as slow as a real gateway ------------------------------------------------------------------------------
async def test_paced_batch_routes_take_the_latency_and_queue_past_the_concurrency(sim: Sim) -> None:
    await sim.pace(0.2, concurrency=2)
    headers = {"authorization": "Bearer sim-key-alice"}
    loop = asyncio.get_running_loop()
    started = loop.time()
    replies = await asyncio.gather(
        *(sim.http.get("/v1/batches", params={"provider": "openai"}, headers=headers) for _ in range(4))
    )
    assert [r.status_code for r in replies] == [200] * 4
    assert loop.time() - started >= 0.4  # two at a time, 0.2 s each: two rounds at least
    assert (await sim.http.get("/_simulator/stats")).status_code == 200  # the control routes are not paced


async def test_a_paced_create_whose_client_goes_away_still_makes_its_batch(sim: Sim) -> None:
    await sim.pace(0.5)
    body = {"model": "openai:gpt-4o-mini", "requests": [{"custom_id": "a", "body": {"messages": []}}]}
    headers = {"authorization": "Bearer sim-key-alice"}
    with pytest.raises(httpx.ReadTimeout):
        await sim.http.post("/v1/batches", json=body, headers=headers, timeout=0.1)
    await asyncio.sleep(0.8)
    assert len(sim.state.batches) == 1  # as a real gateway's: the request went on without its client


async def test_a_batchs_usage_is_the_sum_of_its_results_usage(sim: Sim) -> None:
    body = batch_body(3)
    body["requests"][1]["body"]["messages"][0]["content"] = "a much longer question than the others, to count"
    body["requests"][2]["body"]["simulate"] = {"fail": {"code": "bad", "message": "no"}}
    reply = await sim.http.post("/v1/batches", json=body, headers=ALICE)
    batch_id = reply.json()["id"]
    await sim.force(batch_id, "completed")
    usage = (await get(sim.http, batch_id))["usage"]
    results = (await sim.http.get(f"/v1/batches/{batch_id}/results", params=OPENAI, headers=ALICE)).json()["results"]
    done = [item["result"]["usage"] for item in results if item["result"] is not None]
    assert len(done) == 2
    assert usage["input_tokens"] == sum(u["prompt_tokens"] for u in done)
    assert usage["output_tokens"] == sum(u["completion_tokens"] for u in done)
    assert usage["total_tokens"] == sum(u["total_tokens"] for u in done) > 2


async def test_a_transient_failure_fails_its_first_attempts_then_succeeds(sim: Sim) -> None:
    outcomes = []
    for _ in range(3):
        body = batch_body(2)
        body["requests"][0]["body"]["simulate"] = {"transient": {"key": "flaky-1", "fails": 2}}
        batch_id = (await sim.http.post("/v1/batches", json=body, headers=ALICE)).json()["id"]
        await sim.force(batch_id, "completed")
        counts = (await get(sim.http, batch_id))["request_counts"]
        reply = await sim.http.get(f"/v1/batches/{batch_id}/results", params=OPENAI, headers=ALICE)
        first, second = reply.json()["results"]
        assert second["error"] is None  # the other request is not flaky
        outcomes.append((first["error"]["code"] if first["error"] else "ok", counts["failed"]))
    assert outcomes == [("server_error", 1), ("server_error", 1), ("ok", 0)]
