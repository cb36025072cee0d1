"""The gateway's last answer in this task (its HTTP status and `Otari-Attempt-ID`), for the call's one log line:
the gateway client notes each answer, the edge starts each call afresh and reads them at its end. Each RPC runs in a
task of its own, so a call never sees another's."""

from __future__ import annotations

from contextvars import ContextVar

last_status: ContextVar[int | None] = ContextVar("last_upstream_status", default=None)
last_attempt: ContextVar[str | None] = ContextVar("last_upstream_attempt", default=None)


def note(status: int, attempt_id: str | None) -> None:
    last_status.set(status)
    last_attempt.set(attempt_id)


def forget() -> None:
    """A new call: nothing answered yet."""
    last_status.set(None)
    last_attempt.set(None)
