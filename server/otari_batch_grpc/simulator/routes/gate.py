"""What every gateway route of the simulator does first, as the real gateway (mozilla-ai/otari) was seen to: the
credential, the injected fault, the provider, the batch's owner; and how it answers (late, when a fault says so)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel

from otari_batch_grpc.simulator.accounts import Refused
from otari_batch_grpc.simulator.state import BATCH_PROVIDERS, PROVIDERS_WITHOUT_BATCH, SimBatch, SimState

HEADERS = {"vary": "Authorization", "cache-control": "private, no-store, no-cache"}
PROVIDER_ERROR = "LLM provider error"


SIM_STATE = "otari.simulator.state"  # the ASGI scope key of the state a request is served from (see app)


def sim_state(request: Request) -> SimState:
    state: SimState = request.scope[SIM_STATE]
    return state


Sim = Annotated[SimState, Depends(sim_state)]


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


def authenticate(state: SimState, headers: AuthHeaders) -> Caller:
    """The real gateway's credential headers (mozilla-ai/otari src/gateway/api/deps.py `extract_credential_token`):
    Otari-Key first (a "Bearer " prefix is stripped), then Authorization (which must be "Bearer <token>"), then
    x-api-key; surrounding whitespace is stripped, and a blank credential is a missing one. The first header
    present decides: a bad Authorization is not rescued by an x-api-key."""
    key: str | None = None
    if headers.otari_key:
        key = headers.otari_key.lstrip().removeprefix("Bearer ")
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


async def before(state: SimState, op: str, request: Request) -> Response | None:
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
    """A route's answer, as of now, sent late when a fault says so (a reply that crossed a later change on the way:
    it shows the state when it was read)."""
    response = JSONResponse(data, headers=HEADERS)
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


def batch_provider(provider: str) -> str:
    """The provider of a batch route: a supported one (else 400) that has batches (else 422, on every batch route:
    the provider has no batch API to call)."""
    name = provider_of(provider)
    if name in PROVIDERS_WITHOUT_BATCH:
        raise HTTPException(422, f"Provider '{name}' does not support batch operations")
    return name


def owned(state: SimState, batch_id: str, provider: str, caller: Caller) -> SimBatch:
    """The batch, if `provider` holds it and `caller` may see it: else the real gateway's 502 (the provider does not
    know the id) or 404 (another user's)."""
    name = batch_provider(provider)
    batch = state.batches.get(batch_id)
    if batch is None or batch.provider != name:
        raise HTTPException(502, PROVIDER_ERROR)
    if not caller.master and batch.owner != caller.user:
        raise HTTPException(404, f"Batch '{batch_id}' not found")
    return batch


class DropConnection(Exception):
    """Raised after a batch is created when a drop_after_create fault is armed."""


async def dropped(_request: Request, _exc: DropConnection) -> Response:
    """The batch exists; the reply is lost on the way (as with a reset connection). Answer with a body the client
    cannot use: a truncated JSON document and a content-length that promises more."""
    return Response(content=b'{"id": "batch_', status_code=200, headers={"content-length": "64"})
