"""The simulator's own controls, under /_simulator (not part of the gateway): faults injected, budgets refused,
batches moved, the clock and the pace set, what was asked counted. Tests and the soak drive it; nothing else
should reach it (loopback only)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Query
from pydantic import BaseModel, Field

from otari_batch_grpc.simulator.routes.batches import ANY_USER
from otari_batch_grpc.simulator.routes.gate import Sim
from otari_batch_grpc.simulator.state import BudgetRefusal, Fault, SimState

router = APIRouter()


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
    skip: int = Field(default=0, ge=0)
    provider: str | None = None
    headers: dict[str, str] | None = None


@router.get("/health/liveness")
async def liveness() -> str:
    return "I'm alive!"


@router.post("/_simulator/faults")
async def add_fault(spec: FaultSpec, state: Sim) -> dict[str, int]:
    state.faults.append(Fault(**spec.model_dump()))
    return {"faults": len(state.faults)}


@router.delete("/_simulator/faults")
async def clear_faults(state: Sim) -> dict[str, int]:
    state.faults.clear()
    return {"faults": 0}


@router.post("/_simulator/batches/{batch_id}/status")
async def force_status(batch_id: str, status: Annotated[str, Body(embed=True)], state: Sim) -> dict[str, str]:
    batch = state.batches.get(batch_id)
    if batch is None:
        raise HTTPException(404, f"Batch '{batch_id}' not found")
    if status not in ("failed", "expired", "completed", "cancelled"):
        raise HTTPException(422, "status must be failed, expired, completed or cancelled")
    state.force(batch, status)
    await state.save()
    return {"id": batch_id, "status": status}


@router.get("/_simulator/batches/{batch_id}/timeline")
async def timeline(batch_id: str, state: Sim) -> dict[str, float]:
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


@router.post("/_simulator/clock")
async def set_clock(stage_seconds: Annotated[float, Body(embed=True)], state: Sim) -> dict[str, float]:
    state.stage_seconds = stage_seconds
    await state.save()
    return {"stage_seconds": stage_seconds}


@router.post("/_simulator/pace")
async def set_pace(pace: PaceSpec, state: Sim) -> dict[str, float]:
    state.set_pace(pace.latency, pace.concurrency)
    return {"latency": state.latency, "concurrency": state.concurrency}


@router.post("/_simulator/budget")
async def refuse_budget(spec: BudgetSpec, state: Sim) -> dict[str, Any]:
    """From now on, creates by `user` ("*": anyone) answer `status` with the real gateway's detail."""
    state.budget_refusals[spec.user] = BudgetRefusal(status=spec.status, detail=spec.detail)
    return {"budget_refusals": _refusals(state)}


@router.get("/_simulator/budget")
async def budget_refusals(state: Sim) -> dict[str, Any]:
    return {"budget_refusals": _refusals(state)}


@router.delete("/_simulator/budget")
async def clear_budget(state: Sim, user: Annotated[str | None, Query()] = None) -> dict[str, Any]:
    """Lift the refusal for `user`, or every refusal without one."""
    if user is None:
        state.budget_refusals.clear()
    else:
        state.budget_refusals.pop(user, None)
    return {"budget_refusals": _refusals(state)}


def _refusals(state: SimState) -> dict[str, dict[str, Any]]:
    return {user: {"status": r.status, "detail": r.detail} for user, r in state.budget_refusals.items()}


@router.get("/_simulator/stats")
async def stats(state: Sim) -> dict[str, Any]:
    return {"requests": dict(state.requests_seen), "disconnects": state.disconnects, "reads": dict(state.reads)}
