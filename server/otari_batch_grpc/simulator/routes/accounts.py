"""The gateway's key and user management the service meets (master key only): a key made for a user, a key
deactivated or reactivated, a user blocked or unblocked, a user deleted. Mounted under the state's `api_root`."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel

from otari_batch_grpc.simulator.routes.gate import Auth, AuthHeaders, Sim, authenticate
from otari_batch_grpc.simulator.state import SimState

router = APIRouter()


class KeySpec(BaseModel):
    key_name: str | None = None
    user_id: str


class KeyUpdate(BaseModel):
    is_active: bool | None = None


class UserUpdate(BaseModel):
    blocked: bool | None = None


def _master(state: SimState, auth: AuthHeaders) -> None:
    if not authenticate(state, auth).master:
        raise HTTPException(403, "Master key required")


@router.post("/keys")
async def create_key(spec: KeySpec, auth: Auth, state: Sim) -> dict[str, object]:
    _master(state, auth)
    key = state.accounts.add_key(spec.user_id, name=spec.key_name)
    return {**key.to_json(), "key": key.key}


@router.patch("/keys/{key_id}")
async def update_key(key_id: str, update: KeyUpdate, auth: Auth, state: Sim) -> dict[str, object]:
    _master(state, auth)
    key = state.accounts.key_by_id(key_id)
    if key is None:
        raise HTTPException(404, f"API key with id '{key_id}' not found")
    if update.is_active is not None:
        key.active = update.is_active
    return key.to_json()


@router.patch("/users/{user_id}")
async def update_user(user_id: str, update: UserUpdate, auth: Auth, state: Sim) -> dict[str, object]:
    _master(state, auth)
    user = state.accounts.users.get(user_id)
    if user is None or user.deleted:
        raise HTTPException(404, f"User '{user_id}' not found")
    if update.blocked is not None:
        user.blocked = update.blocked
    return user.to_json()


@router.delete("/users/{user_id}", status_code=204)
async def delete_user(user_id: str, auth: Auth, state: Sim) -> Response:
    _master(state, auth)
    user = state.accounts.users.get(user_id)
    if user is None or user.deleted:
        raise HTTPException(404, f"User '{user_id}' not found")
    user.deleted = True  # its keys answer 401 "API key is inactive" from now on
    return Response(status_code=204)
