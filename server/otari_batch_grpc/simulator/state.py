"""The simulator's world: API keys, batches moving through their statuses on a clock, and injected faults.

Pure logic, no HTTP: the routes (routes/) turn it into the otari gateway's API, documents into its JSON. A
development and test tool, not a gateway.

With a `state_file`, the batches (their clocks, forced statuses and requests, from which statuses and results are
derived) are kept in a JSON file (state_file.StateFile): loaded when the SimState is made, written after every
change, so a restarted simulator still knows the batches a service recorded in its own state. Faults, budget
refusals and request counts are test controls and are not kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otari_batch_grpc.simulator.accounts import DEFAULT_API_KEYS, DEFAULT_MASTER_KEY, Accounts
from otari_batch_grpc.simulator.state_file import JSON, StateFile

BATCH_PROVIDERS = ("openai", "anthropic", "mistral")
PROVIDERS_WITHOUT_BATCH = ("groq",)
SUPPORTED_WINDOWS = ("24h",)
UPSTREAM_METADATA_PAIRS = 16
OWNER_KEY = "otari_user_id"
TERMINAL = ("completed", "failed", "expired", "cancelled")
API_ROOTS = ("/v1", "/api/v1")  # the self-hosted gateway's root, the otari platform's root


@dataclass
class Fault:
    """An injected failure for the operations it names ("create", "get", "list", "cancel", "results", "*")."""

    op: str = "*"
    status: int | None = None
    detail: Any = "Injected fault"
    retry_after: str | None = None
    delay: float = 0.0  # before the request is handled
    answer_delay: float = 0.0  # between the answer and its sending: it shows the state when it was read
    malformed: bool = False
    drop_after_create: bool = False
    times: int | None = None
    skip: int = 0  # the first `skip` calls it matches pass untouched (the second part of a batch fails, say)
    provider: str | None = None  # only calls with this ?provider= (a provider that is down)
    headers: dict[str, str] | None = None  # response headers of the fault's answer

    def matches(self, op: str) -> bool:
        return (self.op in ("*", op)) and (self.times is None or self.times > 0)


@dataclass
class SimBatch:
    id: str
    owner: str
    provider: str
    model: str
    requests: list[JSON]
    metadata: dict[str, str]
    completion_window: str
    created_at: float
    cancel_at: float | None = None
    forced: str | None = None
    forced_at: float | None = None
    # Seconds per stage for this batch alone. Set only for a batch loaded from a state file written under another
    # SimState.stage_seconds, so that a restart with a new stage length does not move batches already recorded
    # (a completed batch must not go back to in_progress). None: the SimState's stage_seconds.
    stage_seconds: float | None = None


@dataclass
class BudgetRefusal:
    """A budget that refuses a user's create, as the real gateway does (see routes.batches.budget_detail)."""

    status: int  # 402 (platform: payment required) or 403 (the user's budget is spent)
    detail: str | None = None  # None: the real gateway's wording for the status


@dataclass
class SimState:
    stage_seconds: float = 5.0
    # Keys and users: keys deactivated, users blocked or deleted, as the gateway does (see accounts).
    accounts: Accounts = field(default_factory=lambda: Accounts.with_keys(DEFAULT_API_KEYS, DEFAULT_MASTER_KEY))
    clock: Callable[[], float] = time.time
    batches: dict[str, SimBatch] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # creation order, oldest first
    faults: list[Fault] = field(default_factory=list)
    # Keys the results document carries before `results` (a gateway of another layout); tests set it.
    results_prefix: dict[str, Any] = field(default_factory=dict)
    requests_seen: Counter[str] = field(default_factory=Counter)
    reads: Counter[str] = field(default_factory=Counter)  # GETs of each batch
    # Transient failures: how many batches each `simulate.transient` key has been in (see transient_attempt); in
    # memory only, so a restarted simulator fails such a request its first `fails` times again.
    transient: Counter[str] = field(default_factory=Counter)
    disconnects: int = 0
    # Where the batches are kept across restarts (JSON, written atomically after every change); None: memory only.
    state_file: Path | None = None
    # The root the batch routes are served under: "/v1" (self-hosted gateway) or "/api/v1" (otari platform).
    # The other root answers 404 {"detail": "Not Found"}.
    api_root: str = "/v1"
    # Budget refusals by user ("*": every user), set through /_simulator/budget.
    budget_refusals: dict[str, BudgetRefusal] = field(default_factory=dict)
    # As slow as a real gateway: every batch route takes `latency` seconds, and at most `concurrency` are served at
    # once (0: no limit), the rest waiting their turn; the real one answers a GET in ~50-80 ms and saturates near
    # 20 requests a second. Set at start (--latency, --concurrency) or through /_simulator/pace.
    latency: float = 0.0
    concurrency: int = 0
    _slots: asyncio.Semaphore | None = field(default=None, init=False, repr=False)
    _file: StateFile | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        root = "/" + self.api_root.strip("/")
        if root not in API_ROOTS:
            raise ValueError(f"api_root must be one of {', '.join(API_ROOTS)}, not {self.api_root!r}")
        self.api_root = root
        if self.state_file is not None:
            self.state_file = Path(self.state_file)
            self._file = StateFile(self.state_file)
            self._load(self._file)

    # -- pace ---------------------------------------------------------------------------------------------
    def set_pace(self, latency: float, concurrency: int) -> None:
        self.latency, self.concurrency = latency, concurrency
        self._slots = None

    @contextlib.asynccontextmanager
    async def paced(self) -> AsyncIterator[None]:
        """One request's turn: a slot (when the concurrency is capped), held for the latency and the answer."""
        if self.concurrency and self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        slots = self._slots if self.concurrency else None
        async with slots or contextlib.nullcontext():
            if self.latency:
                await asyncio.sleep(self.latency)
            yield

    # -- persistence --------------------------------------------------------------------------------------
    @classmethod
    async def open(cls, **fields: Any) -> SimState:
        """`SimState(**fields)` made in a worker thread, so reading a big `state_file` does not block the loop."""
        return await asyncio.to_thread(cls, **fields)

    async def save(self) -> None:
        """Make every change made so far durable in `state_file` (nothing to do without one); see StateFile.save.
        Call after each change (create, cancel, force, stage length)."""
        if self._file is not None:
            await self._file.save(self._snapshot)

    def _snapshot(self) -> JSON:
        """What the file keeps, as of now. Request lists are shared, not copied: they never change after create."""
        batches = [{**vars(self.batches[i]), "metadata": dict(self.batches[i].metadata)} for i in self.order]
        return {"stage_seconds": self.stage_seconds, "batches": batches}

    def _load(self, file: StateFile) -> None:
        """Read the batches back (a missing file is an empty simulator). Runs once, before serving."""
        document = file.load()
        if document is None:
            return
        try:
            saved_stage = float(document["stage_seconds"])
            loaded = [SimBatch(**entry) for entry in document["batches"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise file.unusable(exc) from exc
        for batch in loaded:
            if batch.stage_seconds is None and saved_stage != self.stage_seconds:
                batch.stage_seconds = saved_stage  # a restart with a new stage length moves no batch recorded
            if batch.id not in self.batches:
                self.order.append(batch.id)
            self.batches[batch.id] = batch

    # -- faults -------------------------------------------------------------------------------------------
    def transient_attempt(self, request: dict[str, Any]) -> dict[str, Any]:
        """A request with `simulate.transient` ({"key", "fails", "code"?}) fails, with an error line of that code
        (default server_error, the provider's HTTP 500), in the first `fails` batches that carry its key, and then
        succeeds: a transient failure that a re-run cures. The request as this batch keeps it."""
        simulate = request.get("body", {}).get("simulate")
        spec = simulate.get("transient") if isinstance(simulate, dict) else None
        if not isinstance(spec, dict) or not isinstance(spec.get("key"), str):
            return request
        self.transient[spec["key"]] += 1
        attempt, fails = self.transient[spec["key"]], int(spec.get("fails", 1))
        if attempt > fails:
            return request
        code = str(spec.get("code", "server_error"))
        message = f"The server had an error processing your request (transient: attempt {attempt} of {fails} fails)"
        body = {**request["body"], "simulate": {**simulate, "fail": {"code": code, "message": message}}}
        return {**request, "body": body}

    def take_fault(self, op: str, provider: str | None = None) -> Fault | None:
        for fault in self.faults:
            if fault.matches(op) and (fault.provider is None or fault.provider == (provider or "").lower()):
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None

    # -- batches ------------------------------------------------------------------------------------------
    def create(
        self,
        *,
        owner: str,
        provider: str,
        model: str,
        requests: list[JSON],
        metadata: dict[str, str],
        completion_window: str,
    ) -> SimBatch:
        batch = SimBatch(
            id=f"batch_{secrets.token_hex(12)}",
            owner=owner,
            provider=provider,
            model=model,
            requests=requests,
            metadata={**metadata, OWNER_KEY: owner},
            completion_window=completion_window,
            created_at=self.clock(),
        )
        self.batches[batch.id] = batch
        self.order.append(batch.id)
        return batch

    def stage_of(self, batch: SimBatch) -> float:
        """Seconds the batch spends in each of validating, in_progress and finalizing (and cancelling)."""
        return self.stage_seconds if batch.stage_seconds is None else batch.stage_seconds

    def status_of(self, batch: SimBatch) -> tuple[str, JSON]:
        """The batch's status now and the timestamps reached so far."""
        stage = self.stage_of(batch)
        created = batch.created_at
        stamps: JSON = {}
        now = self.clock()
        if batch.forced is not None:
            return batch.forced, {f"{batch.forced}_at": int(batch.forced_at or now)}
        if batch.cancel_at is not None:
            stamps["cancelling_at"] = int(batch.cancel_at)
            if now >= batch.cancel_at + stage:
                stamps["cancelled_at"] = int(batch.cancel_at + stage)
                return "cancelled", stamps
            return "cancelling", stamps
        elapsed = now - created
        for status, start in (("in_progress", 1), ("finalizing", 2), ("completed", 3)):
            if elapsed >= start * stage:
                stamps[f"{status}_at"] = int(created + start * stage)
        if elapsed >= 3 * stage:
            return "completed", stamps
        if elapsed >= 2 * stage:
            return "finalizing", stamps
        if elapsed >= stage:
            return "in_progress", stamps
        return "validating", stamps

    def cancel(self, batch: SimBatch) -> bool:
        """Start cancelling the batch; False when it already was (nothing changed)."""
        if batch.cancel_at is not None:
            return False
        batch.cancel_at = self.clock()
        return True

    def force(self, batch: SimBatch, status: str) -> None:
        batch.forced, batch.forced_at = status, self.clock()
