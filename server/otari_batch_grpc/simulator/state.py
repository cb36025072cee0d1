"""The simulator's world: API keys, batches moving through their statuses on a clock, and injected faults.

Pure logic, no HTTP: `app` turns it into the otari gateway's routes. A development and test tool, not a gateway.

With a `state_file`, the batches (their clocks, forced statuses and requests, from which statuses and results are
derived) are kept in a JSON file: loaded when the SimState is made, written after every change, so a restarted
simulator still knows the batches a service recorded in its own state. Faults, budget refusals and request counts
are test controls and are not kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otari_batch_grpc.simulator.accounts import DEFAULT_API_KEYS, DEFAULT_MASTER_KEY, Accounts

JSON = dict[str, Any]


BATCH_PROVIDERS = ("openai", "anthropic", "mistral")
PROVIDERS_WITHOUT_BATCH = ("groq",)
SUPPORTED_WINDOWS = ("24h",)
UPSTREAM_METADATA_PAIRS = 16
OWNER_KEY = "otari_user_id"
TERMINAL = ("completed", "failed", "expired", "cancelled")
API_ROOTS = ("/v1", "/api/v1")  # the self-hosted gateway's root, the otari platform's root
STATE_FILE_VERSION = 1


class StateFileError(OSError):
    """The state file exists but cannot be read back as simulator state."""


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
    """A budget that refuses a user's create, as the real gateway does (see app.budget_detail)."""

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
    _generation: int = field(default=0, init=False, repr=False)  # changes made
    _saved_generation: int = field(default=0, init=False, repr=False)  # changes in the file
    _save_lock: asyncio.Lock | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        root = "/" + self.api_root.strip("/")
        if root not in API_ROOTS:
            raise ValueError(f"api_root must be one of {', '.join(API_ROOTS)}, not {self.api_root!r}")
        self.api_root = root
        if self.state_file is not None:
            self.state_file = Path(self.state_file)
            self._load(self.state_file)

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
        """Make every change made so far durable in `state_file` (nothing to do without one).

        Call after each change (create, cancel, force, stage length). Writes are serialized and coalesced: a call
        whose change was already written by a concurrent call returns at once. The JSON is encoded and written in a
        worker thread from a snapshot taken on the event loop, then renamed over the file (atomic). The write
        finishes even if the caller is cancelled, so the file never goes back to an older state.
        """
        if self.state_file is None:
            return
        self._generation += 1
        await asyncio.shield(self._flush(self._generation))

    async def _flush(self, generation: int) -> None:
        if self._save_lock is None:
            self._save_lock = asyncio.Lock()
        async with self._save_lock:
            if self._saved_generation >= generation or self.state_file is None:
                return
            target, snapshot = self._generation, self._snapshot()
            await asyncio.to_thread(_write_atomically, self.state_file, snapshot)
            self._saved_generation = target

    def _snapshot(self) -> JSON:
        """What the file keeps, as of now. Request lists are shared, not copied: they never change after create."""
        batches = []
        for batch_id in self.order:
            b = self.batches[batch_id]
            batches.append(
                {
                    "id": b.id,
                    "owner": b.owner,
                    "provider": b.provider,
                    "model": b.model,
                    "requests": b.requests,
                    "metadata": dict(b.metadata),
                    "completion_window": b.completion_window,
                    "created_at": b.created_at,
                    "cancel_at": b.cancel_at,
                    "forced": b.forced,
                    "forced_at": b.forced_at,
                    "stage_seconds": b.stage_seconds,
                }
            )
        return {"version": STATE_FILE_VERSION, "stage_seconds": self.stage_seconds, "batches": batches}

    def _load(self, path: Path) -> None:
        """Read the batches back (a missing file is an empty simulator). Runs once, before serving."""
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StateFileError(f"gateway simulator state file {path} is not usable: {exc}") from exc
        try:
            data = json.loads(raw)
            if data.get("version") != STATE_FILE_VERSION:
                raise ValueError(f"version {data.get('version')!r}, expected {STATE_FILE_VERSION}")
            saved_stage = float(data["stage_seconds"])
            loaded: list[SimBatch] = []
            for entry in data["batches"]:
                batch = SimBatch(**entry)
                if batch.stage_seconds is None and saved_stage != self.stage_seconds:
                    batch.stage_seconds = saved_stage
                loaded.append(batch)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StateFileError(f"gateway simulator state file {path} is not usable: {exc}") from exc
        for batch in loaded:
            if batch.id not in self.batches:
                self.order.append(batch.id)
            self.batches[batch.id] = batch

    # -- faults -------------------------------------------------------------------------------------------
    def take_fault(self, op: str, provider: str | None = None) -> Fault | None:
        for fault in self.faults:
            if fault.matches(op) and (fault.provider is None or fault.provider == (provider or "").lower()):
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

    def to_json(self, batch: SimBatch, provider_echo: str) -> JSON:
        """The OpenAI batch object the gateway returns: every field present, nulls included."""
        status, stamps = self.status_of(batch)
        total = len(batch.requests)
        failing = sum(1 for r in batch.requests if _failure_of(r) is not None)
        done = _progress(self, batch, status)
        finished = round(total * done)
        failed = min(failing, finished)
        completed = finished - failed
        counts = {"completed": completed, "failed": failed, "total": total if status != "validating" else 0}
        tokens = completed * 30
        has_output = status == "completed" and completed > 0
        has_errors = status == "completed" and failed > 0
        return {
            "id": batch.id,
            "completion_window": batch.completion_window,
            "created_at": int(batch.created_at),
            "endpoint": "/v1/chat/completions",
            "input_file_id": f"file-in-{batch.id[6:18]}",
            "object": "batch",
            "status": status,
            "cancelled_at": stamps.get("cancelled_at"),
            "cancelling_at": stamps.get("cancelling_at"),
            "completed_at": stamps.get("completed_at"),
            "error_file_id": f"file-err-{batch.id[6:18]}" if has_errors else None,
            "errors": None,
            "expired_at": stamps.get("expired_at"),
            "expires_at": int(batch.created_at) + 86400,
            "failed_at": stamps.get("failed_at"),
            "finalizing_at": stamps.get("finalizing_at"),
            "in_progress_at": stamps.get("in_progress_at"),
            "metadata": dict(batch.metadata),
            "model": batch.model,
            "output_file_id": f"file-out-{batch.id[6:18]}" if has_output else None,
            "request_counts": counts,
            "usage": {
                "input_tokens": tokens // 3,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": tokens - tokens // 3,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": tokens,
            },
            "provider": provider_echo,
        }

    def results(self, batch: SimBatch) -> list[JSON]:
        """The results document of a completed batch. Items whose failure went to the provider's error file only
        are missing, as on the real gateway."""
        out: list[JSON] = []
        for index, request in enumerate(batch.requests):
            failure = _failure_of(request)
            if failure is None:
                out.append(
                    {
                        "custom_id": request["custom_id"],
                        "result": _completion(batch, request, index),
                        "error": None,
                    }
                )
            elif not failure.get("error_file_only"):
                error = {"code": failure.get("code", "unknown"), "message": failure.get("message", "failed")}
                out.append({"custom_id": request["custom_id"], "result": None, "error": error})
        return out


def _progress(state: SimState, batch: SimBatch, status: str) -> float:
    stage = state.stage_of(batch)
    if status in ("completed", "finalizing"):
        return 1.0
    if status == "in_progress":
        return min(1.0, (state.clock() - batch.created_at - stage) / max(stage, 1e-9))
    if status in ("cancelling", "cancelled") and batch.cancel_at is not None:
        elapsed = batch.cancel_at - batch.created_at - stage
        return max(0.0, min(1.0, elapsed / max(stage, 1e-9)))
    return 0.0


def _write_atomically(path: Path, data: JSON) -> None:
    """Encode and write `data` beside `path`, then rename it over `path` (in a worker thread: it blocks)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    encoded = json.dumps(data, separators=(",", ":")).encode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(encoded)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _failure_of(request: JSON) -> JSON | None:
    simulate = request.get("body", {}).get("simulate")
    if isinstance(simulate, dict) and isinstance(simulate.get("fail"), dict):
        return {**simulate["fail"], "error_file_only": bool(simulate.get("error_file_only"))}
    return None


def _completion(batch: SimBatch, request: JSON, index: int) -> JSON:
    """An any-llm ChatCompletion: OpenAI's chat.completion plus any-llm's extra nullable fields."""
    messages = request.get("body", {}).get("messages") or []
    last = messages[-1].get("content", "") if messages and isinstance(messages[-1], dict) else ""
    content = f"Echo: {last}"
    prompt_tokens = max(1, len(str(last)) // 4)
    completion_tokens = max(1, len(content) // 4)
    return {
        "id": f"chatcmpl-{batch.id[6:14]}-{index}",
        "object": "chat.completion",
        "created": int(batch.created_at),
        "model": batch.model,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "logprobs": None,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": None,
                    "tool_calls": None,
                    "function_call": None,
                    "annotations": [],
                    "audio": None,
                    "reasoning": None,
                    "images": None,
                    "extra_content": None,
                },
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {
                "cached_tokens": 0,
                "audio_tokens": None,
                "text_tokens": None,
                "image_tokens": None,
                "cache_write_tokens": None,
            },
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": None,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
                "text_tokens": None,
                "image_tokens": None,
            },
            "cache_creation_token_details": None,
        },
        "system_fingerprint": "fp_sim",
        "service_tier": "default",
        "moderation": None,
        "metadata": None,
    }
