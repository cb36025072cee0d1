"""Retention: what is past its time is forgotten (see Store.sweep), and what this process remembers of it too."""

from __future__ import annotations

import time
from dataclasses import dataclass

from otari_batch_grpc.server.domain.core.states import States
from otari_batch_grpc.server.domain.core.trust import Trust
from otari_batch_grpc.server.store import Store


@dataclass(frozen=True, kw_only=True)
class RetentionPolicy:
    keep_seconds: float  # forget a batch nobody was shown for this long
    idempotency_seconds: float  # a settled request_id is honoured this long
    claim_seconds: float  # a create whose outcome stayed unknown blocks its request_id this long


class Retention:
    def __init__(self, *, store: Store, states: States, trust: Trust, policy: RetentionPolicy) -> None:
        self._store = store
        self._states = states
        self._trust = trust
        self._policy = policy

    async def sweep(self, now: float | None = None) -> int:
        """Forget what is past its time; returns how many rows went."""
        policy = self._policy
        gone = await self._store.sweep(
            now=time.time() if now is None else now,
            keep_seconds=policy.keep_seconds,
            idempotency_seconds=policy.idempotency_seconds,
            claim_seconds=policy.claim_seconds,
        )
        self._states.forget()
        self._trust.clear()
        return gone
