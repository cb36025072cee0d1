"""The otari gateway's batch routes, as the real gateway (mozilla-ai/otari) was seen to answer: its status codes and
FastAPI error bodies, oddities included (200 on create, 502 for an id the provider does not know). Mounted under
the state's `api_root` (`/v1` or `/api/v1`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from otari_batch_grpc.simulator.documents import batch_object, results_document
from otari_batch_grpc.simulator.routes.gate import (
    PROVIDER_ERROR,
    Auth,
    Caller,
    DropConnection,
    Sim,
    answer,
    authenticate,
    batch_provider,
    before,
    owned,
)
from otari_batch_grpc.simulator.state import (
    SUPPORTED_WINDOWS,
    TERMINAL,
    UPSTREAM_METADATA_PAIRS,
    SimState,
)

router = APIRouter()

# Every user's budget, in /_simulator/budget.
ANY_USER = "*"


def budget_detail(status: int, user: str) -> str:
    """The real gateway's words for a refused budget.

    403: mozilla-ai/otari src/gateway/services/budget_service.py `validate_user_budget` (and, in later versions,
    src/gateway/services/budgets/_reservations.py `reserve_budget`, which keeps "budget" for the dollar axis "byte
    for byte"): f"User '{user_id}' has exceeded budget limit". The batch create route reaches it through
    `reserve_budget`, after resolving the model and before calling the provider.

    402: the gateway itself never words one. In hybrid mode (the otari platform) it forwards the platform's
    400/401/402/403/404/421/429 with the platform's JSON `detail` string, else the fallback "Authorization request
    rejected" (src/gateway/api/routes/_platform.py `_post_resolve`; docs/hybrid-mode-protocol.md, Resolve >
    Failure). That fallback is the default here; /_simulator/budget takes the platform's own detail if wanted.
    """
    if status == 403:
        return f"User '{user}' has exceeded budget limit"
    return "Authorization request rejected"


# Sent with a 403 budget refusal by later gateway versions: src/gateway/core/error_codes.py (`Otari-Error-Code`,
# `Otari-Budget-Scope`), raised by src/gateway/services/budgets/_reservations.py with scope "user".
_BUDGET_403_HEADERS = {"Otari-Error-Code": "budget_exceeded", "Otari-Budget-Scope": "user"}


class BatchRequestItem(BaseModel):
    custom_id: str
    body: dict[str, Any]


class CreateBatchRequest(BaseModel):
    model: str
    requests: list[BatchRequestItem] = Field(min_length=1, max_length=10_000)
    completion_window: str = "24h"
    metadata: dict[str, str] | None = None
    user: str | None = None


@router.post("/batches", response_model=None)
async def create_batch(request: Request, body: CreateBatchRequest, auth: Auth, state: Sim) -> Response:
    if (early := await before(state, "create", request)) is not None:
        return early
    owner = _owner(state, authenticate(state, auth), body.user)
    provider, model = _split_model(body.model)
    name = batch_provider(provider)
    _reserve_budget(state, owner)  # after the model is resolved, before the provider is called
    metadata = dict(body.metadata or {})
    if body.completion_window not in SUPPORTED_WINDOWS or len(metadata | {"otari_user_id": ""}) > (
        UPSTREAM_METADATA_PAIRS
    ):
        raise HTTPException(502, PROVIDER_ERROR)
    requests = [
        state.transient_attempt({"custom_id": r.custom_id, "body": {**r.body, "model": model}}) for r in body.requests
    ]
    batch = state.create(
        owner=owner,
        provider=name,
        model=model,
        requests=requests,
        metadata=metadata,
        completion_window=body.completion_window,
    )
    await state.save()
    if getattr(request.state, "drop_after_create", False):
        raise DropConnection()
    return await answer(request, batch_object(state, batch, name))


def _owner(state: SimState, caller: Caller, user: str | None) -> str:
    """Whose batch a create makes: the key's user, or with the master key the `user` named (who must exist)."""
    if caller.master:
        if not user:
            raise HTTPException(400, "When using master key, 'user' field is required in request body")
        if not state.accounts.known_user(user):
            raise HTTPException(404, f"User '{user}' not found")
        owner = user
    else:
        assert caller.user is not None
        if user and user != caller.user:
            raise HTTPException(403, "'user' field does not match the authenticated API key's user")
        owner = caller.user
    if state.accounts.blocked(owner):  # reads go on; creates are refused
        raise HTTPException(403, f"User '{owner}' is blocked")
    return owner


def _reserve_budget(state: SimState, owner: str) -> None:
    refusal = state.budget_refusals.get(owner) or state.budget_refusals.get(ANY_USER)
    if refusal is not None:
        headers = _BUDGET_403_HEADERS if refusal.status == 403 else None
        raise HTTPException(refusal.status, refusal.detail or budget_detail(refusal.status, owner), headers)


@router.get("/batches", response_model=None)
async def list_batches(
    request: Request,
    auth: Auth,
    state: Sim,
    provider: Annotated[str | None, Query()] = None,
    after: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query()] = 20,
) -> Response:
    if (early := await before(state, "list", request)) is not None:
        return early
    caller = authenticate(state, auth)  # as the real gateway: the key first, then the parameters (a cheap key check)
    if provider is None:
        raise HTTPException(422, [{"type": "missing", "loc": ["query", "provider"], "msg": "Field required"}])
    name = batch_provider(provider)
    if not 1 <= limit <= 100:
        raise HTTPException(502, PROVIDER_ERROR)
    # The provider's page (every user's batches, newest first), then the gateway's owner filter.
    newest_first = [state.batches[i] for i in reversed(state.order) if state.batches[i].provider == name]
    if after is not None:
        ids = [b.id for b in newest_first]
        newest_first = newest_first[ids.index(after) + 1 :] if after in ids else []
    page = newest_first[:limit]
    mine = [b for b in page if caller.master or b.owner == caller.user]
    return await answer(request, {"data": [batch_object(state, b, provider) for b in mine]})


@router.get("/batches/{batch_id}", response_model=None)
async def get_batch(
    request: Request, batch_id: str, provider: Annotated[str, Query()], auth: Auth, state: Sim
) -> Response:
    state.reads[batch_id] += 1
    if (early := await before(state, "get", request)) is not None:
        return early
    caller = authenticate(state, auth)
    return await answer(request, batch_object(state, owned(state, batch_id, provider, caller), provider))


@router.post("/batches/{batch_id}/cancel", response_model=None)
async def cancel_batch(
    request: Request, batch_id: str, provider: Annotated[str, Query()], auth: Auth, state: Sim
) -> Response:
    if (early := await before(state, "cancel", request)) is not None:
        return early
    batch = owned(state, batch_id, provider, authenticate(state, auth))
    status, _ = state.status_of(batch)
    if status in TERMINAL:
        raise HTTPException(502, PROVIDER_ERROR)
    if state.cancel(batch):
        await state.save()
    return await answer(request, batch_object(state, batch, provider))


@router.get("/batches/{batch_id}/results", response_model=None)
async def batch_results(
    request: Request, batch_id: str, provider: Annotated[str, Query()], auth: Auth, state: Sim
) -> Response:
    if (early := await before(state, "results", request)) is not None:
        return early
    batch = owned(state, batch_id, provider, authenticate(state, auth))
    status, _ = state.status_of(batch)
    if status != "completed":
        raise HTTPException(
            409,
            f"Batch '{batch_id}' is not yet complete (status: {status}). "
            f"Call GET {state.api_root}/batches/{batch_id}?provider={provider} to check the current status.",
        )
    return await answer(request, {**state.results_prefix, "results": results_document(batch)})


def _split_model(model: str) -> tuple[str, str]:
    for sep in (":", "/"):
        provider, found, name = model.partition(sep)
        if found and provider and name:
            return provider, name
    raise HTTPException(
        400,
        f"Unknown or unsupported model '{model}'. Use the format 'provider:model' (e.g. 'openai:gpt-4o-mini').",
    )
