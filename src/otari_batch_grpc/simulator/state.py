"""The simulator's world: API keys, batches moving through their statuses on a clock, and injected faults.

Pure logic, no HTTP: `app` turns it into the otari gateway's routes. A development and test tool, not a gateway.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

# Keys that work out of the box (shown in the README). Each API key belongs to one user.
DEFAULT_API_KEYS = {"sim-key-alice": "alice", "sim-key-bob": "bob"}
DEFAULT_MASTER_KEY = "sim-master-key"

BATCH_PROVIDERS = ("openai", "anthropic", "mistral")
PROVIDERS_WITHOUT_BATCH = ("groq",)
SUPPORTED_WINDOWS = ("24h",)
UPSTREAM_METADATA_PAIRS = 16
OWNER_KEY = "otari_user_id"
TERMINAL = ("completed", "failed", "expired", "cancelled")


@dataclass
class Fault:
    """An injected failure for the operations it names ("create", "get", "list", "cancel", "results", "*")."""

    op: str = "*"
    status: int | None = None
    detail: Any = "Injected fault"
    retry_after: str | None = None
    delay: float = 0.0
    malformed: bool = False
    drop_after_create: bool = False
    times: int | None = None

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


@dataclass
class SimState:
    stage_seconds: float = 5.0
    api_keys: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_API_KEYS))
    master_key: str = DEFAULT_MASTER_KEY
    clock: Callable[[], float] = time.time
    batches: dict[str, SimBatch] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # creation order, oldest first
    faults: list[Fault] = field(default_factory=list)
    requests_seen: Counter[str] = field(default_factory=Counter)
    disconnects: int = 0

    # -- faults -------------------------------------------------------------------------------------------
    def take_fault(self, op: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(op):
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

    def status_of(self, batch: SimBatch) -> tuple[str, JSON]:
        """The batch's status now and the timestamps reached so far."""
        stage = self.stage_seconds
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

    def cancel(self, batch: SimBatch) -> None:
        if batch.cancel_at is None:
            batch.cancel_at = self.clock()

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
    if status in ("completed", "finalizing"):
        return 1.0
    if status == "in_progress":
        return min(1.0, (state.clock() - batch.created_at - state.stage_seconds) / max(state.stage_seconds, 1e-9))
    if status in ("cancelling", "cancelled") and batch.cancel_at is not None:
        elapsed = batch.cancel_at - batch.created_at - state.stage_seconds
        return max(0.0, min(1.0, elapsed / max(state.stage_seconds, 1e-9)))
    return 0.0


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
