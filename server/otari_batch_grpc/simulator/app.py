"""The otari gateway's batch HTTP routes, as the real gateway (mozilla-ai/otari) was seen to answer, over a SimState.

Same paths (under the SimState's `api_root`: `/v1` or `/api/v1`), `provider` query parameter, auth headers,
status codes and FastAPI error bodies as the real gateway, including its oddities (200 on create, 502 for an
unknown batch id). `/_simulator/*` routes inject faults, refuse budgets and move batches; they exist only here.
A development and test tool: never expose it beyond loopback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import Body, Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from otari_batch_grpc.simulator.accounts import Refused
from otari_batch_grpc.simulator.state import (
    BATCH_PROVIDERS,
    PROVIDERS_WITHOUT_BATCH,
    SUPPORTED_WINDOWS,
    TERMINAL,
    UPSTREAM_METADATA_PAIRS,
    BudgetRefusal,
    Fault,
    SimBatch,
    SimState,
)

_HEADERS = {"vary": "Authorization", "cache-control": "private, no-store, no-cache"}
_PROVIDER_ERROR = "LLM provider error"
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


class AuthHeaders(BaseModel):
    authorization: str | None = None
    otari_key: str | None = None
    x_api_key: str | None = None


def auth_headers(
    authorization: Annotated[str | None, Header()] = None,
    otari_key: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> AuthHeaders:
    return AuthHeaders(authorization=authorization, otari_key=otari_key, x_api_key=x_api_key)


Auth = Annotated[AuthHeaders, Depends(auth_headers)]


class Caller(BaseModel):
    user: str | None
    master: bool


class BudgetSpec(BaseModel):
    """Refuse creates for one user (or "*": every user) with 402 or 403, worded as the real gateway does."""

    user: str = ANY_USER
    status: Literal[402, 403] = 403
    detail: str | None = None


class PaceSpec(BaseModel):
    latency: float = Field(default=0.0, ge=0)
    concurrency: int = Field(default=0, ge=0)


class FaultSpec(BaseModel):
    op: str = "*"
    status: int | None = None
    detail: Any = "Injected fault"
    retry_after: str | None = None
    delay: float = 0.0
    answer_delay: float = 0.0
    malformed: bool = False
    drop_after_create: bool = False
    times: int | None = None
    provider: str | None = None
    headers: dict[str, str] | None = None


def create_app(state: SimState) -> FastAPI:
    app = FastAPI(title="otari gateway simulator (development and test tool)", docs_url=None, redoc_url=None)
    app.state.sim = state
    root = state.api_root
    batches_path = f"{root}/batches"

    def authenticate(headers: AuthHeaders) -> Caller:
        """The real gateway's credential headers (mozilla-ai/otari src/gateway/api/deps.py
        `extract_credential_token`): Otari-Key first (a "Bearer " prefix is stripped), then Authorization (which
        must be "Bearer <token>"), then x-api-key; surrounding whitespace is stripped, and a blank credential is a
        missing one. The first header present decides: a bad Authorization is not rescued by an x-api-key."""
        key: str | None = None
        if headers.otari_key:
            value = headers.otari_key.lstrip()
            key = value.removeprefix("Bearer ")
        elif headers.authorization:
            value = headers.authorization.lstrip()
            if value and not value.startswith("Bearer "):
                raise HTTPException(401, "Invalid header format. Expected 'Bearer <token>'")
            key = value[len("Bearer ") :]
        else:
            key = headers.x_api_key
        key = key.strip() if key else ""
        if not key:
            raise HTTPException(401, "Missing Otari-Key, Authorization, or x-api-key header")
        if key == state.accounts.master_key:
            return Caller(user=None, master=True)
        try:
            return Caller(user=state.accounts.user_of(key), master=False)
        except Refused as refused:
            raise HTTPException(refused.status, refused.detail) from None

    async def before(op: str, request: Request) -> Response | None:
        """Count the request and apply any injected fault; a Response short-circuits the route."""
        state.requests_seen[op] += 1
        fault = state.take_fault(op, request.query_params.get("provider"))
        if fault is None:
            return None
        if fault.delay:
            deadline = asyncio.get_running_loop().time() + fault.delay
            while asyncio.get_running_loop().time() < deadline:
                if await request.is_disconnected():
                    state.disconnects += 1
                    return Response(status_code=499)
                await asyncio.sleep(0.01)
        if fault.malformed:
            return PlainTextResponse("<html>upstream went sideways</html>", status_code=fault.status or 200)
        if fault.status is not None:
            headers = {"retry-after": fault.retry_after} if fault.retry_after else {}
            headers.update(fault.headers or {})
            return JSONResponse({"detail": fault.detail}, status_code=fault.status, headers=headers)
        if fault.drop_after_create:
            request.state.drop_after_create = True
        request.state.answer_delay = fault.answer_delay
        return None

    async def answer(request: Request, data: Any) -> JSONResponse:
        """A route's answer, as of now, sent late when a fault says so (a reply that crossed a later change on the
        way: it shows the state when it was read)."""
        response = JSONResponse(data, headers=_HEADERS)
        delay = getattr(request.state, "answer_delay", 0.0)
        if delay:
            await asyncio.sleep(delay)
        return response

    def provider_of(provider: str) -> str:
        name = provider.lower()
        if name in BATCH_PROVIDERS or name in PROVIDERS_WITHOUT_BATCH:
            return name
        supported = ", ".join((*BATCH_PROVIDERS, *PROVIDERS_WITHOUT_BATCH))
        raise HTTPException(400, f"'{provider}' is not a supported provider. Supported providers: {supported}")

    def owned(batch_id: str, provider: str, caller: Caller) -> SimBatch:
        name = provider_of(provider)
        batch = state.batches.get(batch_id)
        if batch is None or batch.provider != name:
            raise HTTPException(502, _PROVIDER_ERROR)
        if not caller.master and batch.owner != caller.user:
            raise HTTPException(404, f"Batch '{batch_id}' not found")
        return batch

    @app.post(batches_path, response_model=None)
    async def create_batch(
        request: Request,
        body: CreateBatchRequest,
        auth: Auth,
    ) -> Response:
        if (early := await before("create", request)) is not None:
            return early
        caller = authenticate(auth)
        if caller.master:
            if not body.user:
                raise HTTPException(400, "When using master key, 'user' field is required in request body")
            if not state.accounts.known_user(body.user):
                raise HTTPException(404, f"User '{body.user}' not found")
            owner = body.user
        else:
            assert caller.user is not None
            if body.user and body.user != caller.user:
                raise HTTPException(403, "'user' field does not match the authenticated API key's user")
            owner = caller.user
        if state.accounts.blocked(owner):  # reads go on; creates are refused
            raise HTTPException(403, f"User '{owner}' is blocked")
        provider, model = _split_model(body.model)
        name = provider_of(provider)
        if name in PROVIDERS_WITHOUT_BATCH:
            raise HTTPException(422, f"Provider '{name}' does not support batch operations")
        # The budget is reserved after the model is resolved and before the provider is called.
        refusal = state.budget_refusals.get(owner) or state.budget_refusals.get(ANY_USER)
        if refusal is not None:
            headers = _BUDGET_403_HEADERS if refusal.status == 403 else None
            raise HTTPException(refusal.status, refusal.detail or budget_detail(refusal.status, owner), headers)
        metadata = dict(body.metadata or {})
        if body.completion_window not in SUPPORTED_WINDOWS or len(metadata | {"otari_user_id": ""}) > (
            UPSTREAM_METADATA_PAIRS
        ):
            raise HTTPException(502, _PROVIDER_ERROR)
        requests = [{"custom_id": r.custom_id, "body": {**r.body, "model": model}} for r in body.requests]
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
            raise _DropConnection()
        return await answer(request, state.to_json(batch, name))

    @app.get(batches_path, response_model=None)
    async def list_batches(
        request: Request,
        auth: Auth,
        provider: Annotated[str | None, Query()] = None,
        after: Annotated[str | None, Query()] = None,
        limit: Annotated[int, Query()] = 20,
    ) -> Response:
        if (early := await before("list", request)) is not None:
            return early
        caller = authenticate(auth)  # as the real gateway: the key first, then the parameters (a cheap key check)
        if provider is None:
            raise HTTPException(422, [{"type": "missing", "loc": ["query", "provider"], "msg": "Field required"}])
        name = provider_of(provider)
        if not 1 <= limit <= 100:
            raise HTTPException(502, _PROVIDER_ERROR)
        # The provider's page (every user's batches, newest first), then the gateway's owner filter.
        newest_first = [state.batches[i] for i in reversed(state.order) if state.batches[i].provider == name]
        if after is not None:
            ids = [b.id for b in newest_first]
            newest_first = newest_first[ids.index(after) + 1 :] if after in ids else []
        page = newest_first[:limit]
        mine = [b for b in page if caller.master or b.owner == caller.user]
        return await answer(request, {"data": [state.to_json(b, provider) for b in mine]})

    @app.get(batches_path + "/{batch_id}", response_model=None)
    async def get_batch(
        request: Request,
        batch_id: str,
        provider: Annotated[str, Query()],
        auth: Auth,
    ) -> Response:
        state.reads[batch_id] += 1
        if (early := await before("get", request)) is not None:
            return early
        caller = authenticate(auth)
        return await answer(request, state.to_json(owned(batch_id, provider, caller), provider))

    @app.post(batches_path + "/{batch_id}/cancel", response_model=None)
    async def cancel_batch(
        request: Request,
        batch_id: str,
        provider: Annotated[str, Query()],
        auth: Auth,
    ) -> Response:
        if (early := await before("cancel", request)) is not None:
            return early
        caller = authenticate(auth)
        batch = owned(batch_id, provider, caller)
        status, _ = state.status_of(batch)
        if status in TERMINAL:
            raise HTTPException(502, _PROVIDER_ERROR)
        if state.cancel(batch):
            await state.save()
        return await answer(request, state.to_json(batch, provider))

    @app.get(batches_path + "/{batch_id}/results", response_model=None)
    async def batch_results(
        request: Request,
        batch_id: str,
        provider: Annotated[str, Query()],
        auth: Auth,
    ) -> Response:
        if (early := await before("results", request)) is not None:
            return early
        caller = authenticate(auth)
        batch = owned(batch_id, provider, caller)
        status, _ = state.status_of(batch)
        if status != "completed":
            raise HTTPException(
                409,
                f"Batch '{batch_id}' is not yet complete (status: {status}). "
                f"Call GET {batches_path}/{batch_id}?provider={provider} to check the current status.",
            )
        return await answer(request, {**state.results_prefix, "results": state.results(batch)})

    @app.get("/health/liveness")
    async def liveness() -> str:
        return "I'm alive!"

    # -- simulator controls (not part of the gateway) ------------------------------------------------------
    @app.post("/_simulator/faults")
    async def add_fault(spec: FaultSpec) -> dict[str, int]:
        state.faults.append(Fault(**spec.model_dump()))
        return {"faults": len(state.faults)}

    @app.delete("/_simulator/faults")
    async def clear_faults() -> dict[str, int]:
        state.faults.clear()
        return {"faults": 0}

    @app.post("/_simulator/batches/{batch_id}/status")
    async def force_status(batch_id: str, status: Annotated[str, Body(embed=True)]) -> dict[str, str]:
        batch = state.batches.get(batch_id)
        if batch is None:
            raise HTTPException(404, f"Batch '{batch_id}' not found")
        if status not in ("failed", "expired", "completed", "cancelled"):
            raise HTTPException(422, "status must be failed, expired, completed or cancelled")
        state.force(batch, status)
        await state.save()
        return {"id": batch_id, "status": status}

    @app.get("/_simulator/batches/{batch_id}/timeline")
    async def timeline(batch_id: str) -> dict[str, float]:
        """When the batch enters each status on the simulator's clock (exact, unlike the API's whole seconds)."""
        batch = state.batches.get(batch_id)
        if batch is None:
            raise HTTPException(404, f"Batch '{batch_id}' not found")
        stage = state.stage_of(batch)
        return {
            "validating": batch.created_at,
            "in_progress": batch.created_at + stage,
            "finalizing": batch.created_at + 2 * stage,
            "completed": batch.created_at + 3 * stage,
        }

    @app.post("/_simulator/clock")
    async def set_clock(stage_seconds: Annotated[float, Body(embed=True)]) -> dict[str, float]:
        state.stage_seconds = stage_seconds
        await state.save()
        return {"stage_seconds": stage_seconds}

    @app.post("/_simulator/pace")
    async def set_pace(pace: PaceSpec) -> dict[str, float]:
        state.set_pace(pace.latency, pace.concurrency)
        return {"latency": state.latency, "concurrency": state.concurrency}

    @app.post("/_simulator/budget")
    async def refuse_budget(spec: BudgetSpec) -> dict[str, Any]:
        """From now on, creates by `user` ("*": anyone) answer `status` with the real gateway's detail."""
        state.budget_refusals[spec.user] = BudgetRefusal(status=spec.status, detail=spec.detail)
        return {"budget_refusals": _refusals()}

    @app.get("/_simulator/budget")
    async def budget_refusals() -> dict[str, Any]:
        return {"budget_refusals": _refusals()}

    @app.delete("/_simulator/budget")
    async def clear_budget(user: Annotated[str | None, Query()] = None) -> dict[str, Any]:
        """Lift the refusal for `user`, or every refusal without one."""
        if user is None:
            state.budget_refusals.clear()
        else:
            state.budget_refusals.pop(user, None)
        return {"budget_refusals": _refusals()}

    def _refusals() -> dict[str, dict[str, Any]]:
        return {user: {"status": r.status, "detail": r.detail} for user, r in state.budget_refusals.items()}

    @app.get("/_simulator/stats")
    async def stats() -> dict[str, Any]:
        return {"requests": dict(state.requests_seen), "disconnects": state.disconnects, "reads": dict(state.reads)}

    @app.exception_handler(_DropConnection)
    async def drop(_request: Request, _exc: _DropConnection) -> Response:
        # The batch exists; the reply is lost on the way (as with a reset connection). Answer with a body the
        # client cannot use: a truncated JSON document and a content-length that promises more.
        return Response(content=b'{"id": "batch_', status_code=200, headers={"content-length": "64"})

    _account_routes(app, state, authenticate)
    app.add_middleware(_Paced, state=state, prefix=batches_path)
    return app


class KeySpec(BaseModel):
    key_name: str | None = None
    user_id: str


class KeyUpdate(BaseModel):
    is_active: bool | None = None


class UserUpdate(BaseModel):
    blocked: bool | None = None


def _account_routes(app: FastAPI, state: SimState, authenticate: Callable[[AuthHeaders], Caller]) -> None:
    """The gateway's key and user management the service meets (master key only): a key made for a user, a key
    deactivated or reactivated, a user blocked or unblocked, a user deleted."""
    root, accounts = state.api_root, state.accounts

    def master(auth: AuthHeaders) -> None:
        if not authenticate(auth).master:
            raise HTTPException(403, "Master key required")

    @app.post(f"{root}/keys")
    async def create_key(spec: KeySpec, auth: Auth) -> dict[str, object]:
        master(auth)
        key = accounts.add_key(spec.user_id, name=spec.key_name)
        return {**key.to_json(), "key": key.key}

    @app.patch(f"{root}/keys/{{key_id}}")
    async def update_key(key_id: str, update: KeyUpdate, auth: Auth) -> dict[str, object]:
        master(auth)
        key = accounts.key_by_id(key_id)
        if key is None:
            raise HTTPException(404, f"API key with id '{key_id}' not found")
        if update.is_active is not None:
            key.active = update.is_active
        return key.to_json()

    @app.patch(f"{root}/users/{{user_id}}")
    async def update_user(user_id: str, update: UserUpdate, auth: Auth) -> dict[str, object]:
        master(auth)
        user = accounts.users.get(user_id)
        if user is None or user.deleted:
            raise HTTPException(404, f"User '{user_id}' not found")
        if update.blocked is not None:
            user.blocked = update.blocked
        return user.to_json()

    @app.delete(f"{root}/users/{{user_id}}", status_code=204)
    async def delete_user(user_id: str, auth: Auth) -> Response:
        master(auth)
        user = accounts.users.get(user_id)
        if user is None or user.deleted:
            raise HTTPException(404, f"User '{user_id}' not found")
        user.deleted = True  # its keys answer 401 "API key is inactive" from now on
        return Response(status_code=204)


class _Paced:
    """Every batch route as slow, and as few at once, as the state's pace says (see SimState.latency). Plain ASGI,
    not Starlette's BaseHTTPMiddleware, so a request goes on when its client goes away, as a gateway's does: a create
    whose client was killed still makes its batch."""

    def __init__(self, app: ASGIApp, *, state: SimState, prefix: str) -> None:
        self.app, self.state, self.prefix = app, state, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        paced = self.state.latency or self.state.concurrency
        if not paced or scope["type"] != "http" or not str(scope["path"]).startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        body: list[Message] = []  # the request, read at once while its client is there
        while not body or (body[-1]["type"] == "http.request" and body[-1].get("more_body", False)):
            body.append(await receive())

        async def replay() -> Message:
            return body.pop(0) if body else await receive()

        async with self.state.paced():
            await self.app(scope, replay, send)


class _DropConnection(Exception):
    """Raised after a batch is created when a drop_after_create fault is armed."""


def _split_model(model: str) -> tuple[str, str]:
    for sep in (":", "/"):
        provider, found, name = model.partition(sep)
        if found and provider and name:
            return provider, name
    raise HTTPException(
        400,
        f"Unknown or unsupported model '{model}'. Use the format 'provider:model' (e.g. 'openai:gpt-4o-mini').",
    )
