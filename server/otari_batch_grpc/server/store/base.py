"""The store's one interface, and the records that cross it. Values are opaque bytes and strings: the store knows
nothing of protobuf. Two backends implement it (`sqlite`, `postgres`); `tests/test_store.py` runs against both."""

from __future__ import annotations

import abc
import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple


class StoreError(RuntimeError):
    """The database cannot be used (newer schema, corrupt file, unwritable path, unreachable server)."""


class StoreUnavailable(StoreError):
    """The database server did not answer this time (unreachable, the connection cut): a retry may succeed."""


@dataclass(frozen=True)
class BatchRecord:
    id: str
    provider: str
    creator: str | None
    status: str
    terminal: bool
    snapshot: bytes
    first_seen: float
    last_seen: float
    created_at: float = 0.0


class Access(NamedTuple):
    """The gateway showed an owner a batch: when it last did (epoch seconds, as written; 0.0 when it refused the
    owner's key since: that showing no longer counts), and the batch's provider."""

    verified_at: float
    provider: str


class FollowedBatch(NamedTuple):
    """A live batch an endpoint is to be told of, and the endpoint of its owner whose sealed key reads it."""

    batch_id: str
    provider: str
    endpoint_id: str
    owner: str
    sealed_key: bytes


@dataclass(frozen=True)
class RevisionNotice:
    """A revision some process saved: which batch, its number, whose caller was shown it, by which process."""

    batch_id: str
    rev: int
    owner: str
    provider: str
    origin: str


@dataclass(frozen=True)
class RefusalNotice:
    """A key some process heard the gateway refuse (401): access shown to its owner before `at` no longer counts."""

    owner: str
    at: float
    origin: str


Notice = RevisionNotice | RefusalNotice


@dataclass(frozen=True)
class SeenBatch:
    """A batch as the gateway just showed it to a caller."""

    id: str
    provider: str
    status: str
    terminal: bool
    snapshot: bytes
    created_at: float = 0.0  # the batch's own created_at (epoch seconds), for listing newest first


@dataclass(frozen=True)
class Revision:
    """One observed state of a batch; revisions of a batch count up from 1."""

    batch_id: str
    rev: int
    snapshot: bytes
    observed_at: float
    seq: int = 0  # position among every revision stored, for resuming a many-batch watch


@dataclass(frozen=True)
class Claim:
    """The idempotency row for (owner, request_id), as one create attempt found it.

    An attempt holds the row while it may still run: until `attempt_until`, a time the attempt set itself when it
    took the row (its own deadline plus a grace), by the database's clock. A row past it with no batch is an attempt
    that ended without a reply (or died): the next attempt takes it over and looks for what it made."""

    mine: bool  # this attempt holds the row now: create (after searching upstream, when `recovering`)
    recovering: bool  # an earlier attempt holding it ended without a reply: what it made must be looked for first
    fingerprint: str
    provider: str
    batch_id: str | None  # set once a batch is known for it
    created_at: float = 0.0  # when the first attempt claimed it
    attempt_left: float = 0.0  # seconds the attempt holding it may still run (<= 0: none runs)


@dataclass(frozen=True)
class WholeRecord:
    """A batch of several parts, as this service made it: whose, with what (the create request without its
    requests, serialized), how many requests, and whether a cancel was asked."""

    id: str
    owner: str
    provider: str
    request_id: str
    requests: int
    header: bytes
    created_at: float
    cancel_asked: bool = False
    max_attempts: int = 1  # tries each request gets (re-runs of retryable failures past 1)

    @classmethod
    def of_row(cls, row: Sequence[Any]) -> WholeRecord:
        """A row of queries.WHOLE, from either backend."""
        owner, provider, request_id = str(row[1]), str(row[2]), str(row[3])
        return cls(str(row[0]), owner, provider, request_id, int(row[4]), bytes(row[5]), float(row[6]), *_flags(row))

    def row(self) -> tuple[object, ...]:
        """Its values in queries.WHOLE_COLUMNS' order."""
        return (
            self.id,
            self.owner,
            self.provider,
            self.request_id,
            self.requests,
            self.header,
            self.created_at,
            self.cancel_asked,
            self.max_attempts,
        )


def _flags(row: Sequence[Any]) -> tuple[bool, int]:
    return bool(row[7]), int(row[8])


@dataclass(frozen=True)
class PartPlan:
    """One part as planned: its index, the batch's requests it holds ([first, first + count), or for a re-run the
    packed `indices`) and their custom_ids (packed, see domain.parts); for a first try with re-runs asked, its
    requests themselves (`bodies`, packed), kept for them."""

    index: int
    first: int
    count: int
    custom_ids: bytes
    bodies: bytes | None = None
    attempt: int = 1
    rerun_of: int | None = None
    indices: bytes | None = None

    def row(self, batch_id: str) -> tuple[object, ...]:
        """Its values in queries.ADD_PART's order."""
        return (
            batch_id,
            self.index,
            self.first,
            self.count,
            self.custom_ids,
            self.bodies,
            self.attempt,
            self.rerun_of,
            self.indices,
        )


@dataclass(frozen=True)
class PartRecord:
    """One part as it stands: made upstream (`upstream_id`), an attempt to make it sent at `sent_at` (0.0: never),
    and its last state seen (a Batch, serialized; b"" before any)."""

    index: int
    first: int
    count: int
    upstream_id: str | None
    sent_at: float
    snapshot: bytes
    terminal: bool
    attempt: int = 1
    rerun_of: int | None = None  # the part whose retryable failures it re-runs
    examined: bool = False  # (a part that ended) its failures were looked at, and a re-run recorded if any

    @classmethod
    def of_row(cls, row: Sequence[Any]) -> PartRecord:
        """A row of queries.PARTS, from either backend."""
        upstream_id = str(row[3]) if row[3] is not None else None
        rerun_of = int(row[8]) if row[8] is not None else None
        index, first, count, sent_at, snapshot = int(row[0]), int(row[1]), int(row[2]), float(row[4]), bytes(row[5])
        return cls(
            index, first, count, upstream_id, sent_at, snapshot, bool(row[6]), int(row[7]), rerun_of, bool(row[9])
        )


def is_database_url(target: str | os.PathLike[str]) -> bool:
    """Whether `target` names a PostgreSQL database (a URL) rather than a SQLite file."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


@dataclass(frozen=True)
class EndpointRecord:
    """A webhook endpoint as kept (#32): whose, where, which changes (`events`: 'terminal' or 'all'; a metadata
    filter, as a JSON object), its signing secrets and its owner's key (both sealed), whether it is enabled (and
    why not), and when it was made and last changed (`updated_at`: what an update compares)."""

    id: str
    owner: str
    url: str
    events: str
    metadata_filter: str
    description: str
    secrets: bytes
    sealed_key: bytes
    enabled: bool
    disabled_reason: str
    created_at: float
    updated_at: float

    @classmethod
    def of_row(cls, row: Sequence[Any]) -> EndpointRecord:
        """A row of queries.ENDPOINT_COLUMNS, from either backend."""
        endpoint_id, owner, url, events, metadata_filter, description = (str(value) for value in row[:6])
        secrets, sealed_key, enabled, reason = bytes(row[6]), bytes(row[7]), bool(row[8]), str(row[9])
        return cls(
            endpoint_id, owner, url, events, metadata_filter, description, secrets, sealed_key, enabled, reason,
            float(row[10]), float(row[11]),
        )  # fmt: skip

    def row(self) -> tuple[object, ...]:
        """Its values in queries.ENDPOINT_COLUMNS' order."""
        return dataclasses.astuple(self)


@dataclass(frozen=True)
class Change:
    """A batch's new revision as the webhook outbox sees it (see `enter`): the batch as seen, the status the registry
    had for it before (None: new to it), the revision, and the endpoints that may be told of it: those of the
    owner that showed it now, and of owners it was shown to lately (`trusted_since`)."""

    seen: SeenBatch
    before: str | None
    revision: Revision
    endpoints: tuple[EndpointRecord, ...]


@dataclass(frozen=True)
class Delivery:
    """An event for the webhook outbox: which endpoint, which batch and revision, its type, and the BatchEvent it
    carries (serialized)."""

    endpoint_id: str
    batch_id: str
    rev: int
    kind: str
    terminal: bool
    event: bytes


# What the outbox is to send of a transaction's changes: a pure function, run inside it (see `enter`), maybe off the
# event loop (SQLite runs a transaction on its own thread).
Notify = Callable[[Sequence[Change]], Sequence[Delivery]]


@dataclass(frozen=True)
class DeliveryRecord:
    """An event in the webhook outbox, and how its delivery went (`state`: pending, delivered, superseded,
    dropped; the receiver's last status, 0 when none came)."""

    id: int
    endpoint_id: str
    batch_id: str
    rev: int
    kind: str
    terminal: bool
    event: bytes
    created_at: float
    state: str
    attempts: int
    next_at: float
    last_status: int
    last_error: str
    done_at: float

    @classmethod
    def of_row(cls, row: Sequence[Any]) -> DeliveryRecord:
        """A row of queries.DELIVERY_COLUMNS, from either backend."""
        return cls(
            int(row[0]), str(row[1]), str(row[2]), int(row[3]), str(row[4]), bool(row[5]), bytes(row[6]),
            float(row[7]), str(row[8]), int(row[9]), float(row[10]), int(row[11]), str(row[12]), float(row[13]),
        )  # fmt: skip


class ClaimedDelivery(NamedTuple):
    """An event claimed for a try, with what the try needs: its endpoint, and when the gateway last showed the
    endpoint's owner its batch (0.0 when never, when revoked, or when it refused the owner's key since)."""

    delivery: DeliveryRecord
    endpoint: EndpointRecord
    verified_at: float

    @classmethod
    def joined(cls, deliveries: Sequence[DeliveryRecord], targets: Sequence[Sequence[Any]]) -> list[ClaimedDelivery]:
        """The claimed deliveries (in their order) with their rows of queries.CLAIMED_TARGETS; one whose endpoint
        is gone is left out (its events went with it)."""
        found = {int(row[0]): (EndpointRecord.of_row(row[1:-1]), float(row[-1] or 0.0)) for row in targets}
        return [cls(d, *found[d.id]) for d in deliveries if d.id in found]


class EndpointsStore(abc.ABC):
    """The store's part for webhook endpoints (#32; Store holds it with the rest)."""

    @abc.abstractmethod
    async def add_endpoint(self, endpoint: EndpointRecord, *, limit: int) -> bool:
        """Keep a new endpoint, unless its owner has `limit` already (False)."""

    @abc.abstractmethod
    async def endpoint(self, endpoint_id: str) -> EndpointRecord | None:
        """The endpoint with this id, whoever's it is."""

    @abc.abstractmethod
    async def endpoints_of(self, owner: str) -> list[EndpointRecord]:
        """The owner's endpoints, oldest first."""

    @abc.abstractmethod
    async def update_endpoint(self, endpoint: EndpointRecord, *, read_at: float) -> bool:
        """Write the endpoint (its owner's) as changed, its sealed key too, unless it changed since it was read
        (its `updated_at` then was `read_at`): False, read it again."""

    @abc.abstractmethod
    async def delete_endpoint(self, endpoint_id: str, owner: str) -> bool:
        """Forget the owner's endpoint; False when it has none of this id."""

    @abc.abstractmethod
    async def deliveries(self, endpoint_id: str, limit: int) -> list[DeliveryRecord]:
        """The endpoint's events in the outbox, newest first."""

    @abc.abstractmethod
    async def claim_deliveries(
        self, holder: str, *, now: float, lease_seconds: float, limit: int, per_endpoint: int
    ) -> list[ClaimedDelivery]:
        """Events due to be tried, leased to `holder` for `lease_seconds` (no one else takes them meanwhile; a
        holder that dies leaves them to another once the lease ends): each the oldest pending one of its endpoint
        and batch, of enabled endpoints, no more of one endpoint than make `per_endpoint` with those being tried
        already, by any holder; `limit` at most. Each with its endpoint and its owner's access to the batch, read
        in the same transaction (a try needs no read of its own)."""

    @abc.abstractmethod
    async def finish_delivery(
        self, delivery_id: int, holder: str, *, state: str, attempts: int, next_at: float, status: int, error: str,
        done_at: float,
    ) -> bool:  # fmt: skip
        """How a try of a leased event went (state pending again, delivered or dropped); False when `holder` no
        longer holds it. Pending again, it is superseded if a newer change of its batch came meanwhile (unless it is
        terminal): a failed try of a stale event holds no newer one back."""

    @abc.abstractmethod
    async def disable_endpoint(self, endpoint_id: str, reason: str, *, now: float) -> bool:
        """Disable an endpoint, saying why (its receiver answered 410, its owner's key was refused); False when it
        was disabled already."""

    @abc.abstractmethod
    async def enable_endpoint(self, endpoint_id: str, *, now: float) -> bool:
        """Enable a disabled endpoint (what waited for it is then sent); False when it was enabled."""

    @abc.abstractmethod
    async def disable_endpoints_of(self, owner: str, reason: str, *, now: float) -> int:
        """Disable every endpoint of the owner and forget the key they were registered with (the gateway refused
        it), saying why on them and on their pending events; how many endpoints were changed."""

    @abc.abstractmethod
    async def sweep_outbox(self, *, before: float, now: float) -> int:
        """The outbox kept to its window: pending events made `before` dropped (unless a replica is trying one),
        finished ones done before it forgotten; how many rows were."""

    @abc.abstractmethod
    async def endpoint_batches(self, limit: int) -> list[FollowedBatch]:
        """The live batches endpoints are to be told of (their owner's, not refused them), least lately seen first,
        each with an endpoint of its owner (whose sealed key reads it); `limit` at most."""


class PartsStore(abc.ABC):
    """The store's part for batches of several parts (Store holds it with the rest)."""

    @abc.abstractmethod
    async def add_whole(self, whole: WholeRecord, parts: Sequence[PartPlan]) -> WholeRecord:
        """Record a batch of several parts and its plan, unless it is recorded already: the one recorded first
        (its plan kept, whoever splits again) is returned."""

    @abc.abstractmethod
    async def whole(self, batch_id: str) -> WholeRecord | None:
        """The batch of several parts with this id, if it is one."""

    @abc.abstractmethod
    async def parts(self, batch_id: str) -> list[PartRecord]:
        """Its parts, in order."""

    @abc.abstractmethod
    async def part_made_as(self, upstream_id: str) -> tuple[str, str, int] | None:
        """(batch id, owner, index) of the batch of several parts the upstream batch is a part of; None for one that
        is no part."""

    @abc.abstractmethod
    async def part_custom_ids(self, batch_id: str, index: int) -> bytes:
        """The custom_ids of the part's requests, as planned (packed)."""

    @abc.abstractmethod
    async def part_sent(self, batch_id: str, index: int, at: float) -> None:
        """An attempt to make the part upstream is sent (at `at`): a later attempt must look for what it made."""

    @abc.abstractmethod
    async def part_seen(self, batch_id: str, index: int, snapshot: bytes, *, terminal: bool, upstream_id: str) -> None:
        """The part's upstream batch (made, or found) and its state as the gateway showed it (a part already known as
        another upstream batch, or abandoned, is left as it is)."""

    @abc.abstractmethod
    async def abandon_part(self, batch_id: str, index: int, snapshot: bytes, *, unheld_since: float) -> bool:
        """A part not made, that will not be (the batch was cancelled, its re-runs stopped): ended, with `snapshot`
        (why), unless an attempt marked it sent at or after `unheld_since` (it may be making it). Whether it was."""

    @abc.abstractmethod
    async def keep_bodies(self, batch_id: str, index: int, bodies: bytes) -> None:
        """A first try's requests, kept for its re-runs (packed; written part by part, unless kept already)."""

    @abc.abstractmethod
    async def part_bodies(self, batch_id: str, index: int) -> bytes:
        """A first try's requests, as kept for re-runs (packed; b"" when none were kept)."""

    @abc.abstractmethod
    async def part_indices(self, batch_id: str, index: int) -> bytes:
        """A re-run's requests: their indexes in the batch (packed)."""

    @abc.abstractmethod
    async def examine_part(self, batch_id: str, index: int, rerun: PartPlan | None) -> bool:
        """The part's failures were looked at: mark it so and, in the same transaction, record `rerun` (its
        index the next free one) when there is one. False when another call did it first (nothing is written)."""

    @abc.abstractmethod
    async def take_part(self, batch_id: str, index: int, *, hold_seconds: float) -> float | None:
        """Take the making of a part not made yet, marked sent now: when it was marked sent before (0.0: never; an
        attempt then got no reply, and what it made must be looked for first); None while another attempt holds
        it (marked within `hold_seconds`) or when it is made."""

    @abc.abstractmethod
    async def delegate(self, batch_id: str, owner: str, sealed: bytes) -> None:
        """Keep the caller's key, sealed, for this batch's work without it (the first kept stays)."""

    @abc.abstractmethod
    async def delegation(self, batch_id: str) -> tuple[str, bytes] | None:
        """(owner, sealed key) delegated for the batch, if any."""

    @abc.abstractmethod
    async def end_reruns(self, batch_id: str) -> None:
        """No more re-runs of the batch (it ended, or the gateway refused the key): forget the key delegated for it
        and the requests kept for them."""

    @abc.abstractmethod
    async def delegated(self, limit: int) -> list[str]:
        """The batches a key is delegated for, oldest first."""

    @abc.abstractmethod
    async def cancel_whole(self, batch_id: str) -> None:
        """A cancel of the batch was asked: it ends CANCELLED, whatever its parts do."""

    @abc.abstractmethod
    async def drop_whole(self, batch_id: str) -> None:
        """Forget a batch of several parts whose create failed (its parts made so far were cancelled)."""


class Store(PartsStore, EndpointsStore, abc.ABC):
    """The service's durable state: the batch registry, who may see each batch, idempotency claims, status
    revisions and the results cache. Every method is one short transaction (or one read); a write that began
    finishes whole even when the calling task is cancelled."""

    # The backend's numbered migrations: migration N is MIGRATIONS[N - 1]; the schema version is the last applied.
    MIGRATIONS: ClassVar[tuple[str, ...]]

    transactions: int  # write transactions begun (for tests and operators)
    # Whether other processes share the store (replicas on PostgreSQL) or it is one process's own (SQLite).
    SHARED: ClassVar[bool] = False
    # This process's name among those sharing the store (in notices, leases and the revisions it saves); '' alone.
    origin: str = ""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the database (what is in flight finishes first)."""

    @abc.abstractmethod
    async def integrity_check(self) -> str:
        """ "ok", or what is wrong with the database."""

    @abc.abstractmethod
    async def schema_version(self) -> int:
        """The number of the last migration applied."""

    @abc.abstractmethod
    async def shared_secret(self, name: str) -> bytes | None:
        """The secret `name` every process on this store shares (made by the first to ask): the key of the hash
        that stands for a caller (OWNER_SECRET), so replicas hash alike, and the token key (TOKEN_KEYS), so a token
        opens on any replica, when they are not set; None for a store that is one process's own (SQLite: such a
        secret is a file beside it)."""

    # -- registry and access ------------------------------------------------------------------------------
    @abc.abstractmethod
    async def enter(
        self,
        changed: Sequence[SeenBatch],
        verified: Sequence[str],
        *,
        owner: str,
        creator: bool = False,
        keep: int,
        observed_at: float,
        shown_at: float | None = None,
        notify: Notify | None = None,
        trusted_since: float = math.inf,
    ) -> list[Revision]:
        """In one transaction: the batches whose state changed into the registry, each as its next revision (the
        newest `keep` kept, observed at `observed_at`), and `owner`'s access to those and to the `verified` ones (as
        of `shown_at`, when the call that showed them was sent; default `observed_at`). Returns the revisions, in
        the order of `changed`; their `seq` grows in the order they were committed.

        With `notify`, the webhook outbox in the same transaction: each changed batch that has endpoints to tell
        (`owner`'s, and those of owners shown it at `trusted_since` or later) is a Change; what `notify` makes of
        them goes into the outbox, and each pending event a newer one tells of the change of is superseded."""

    @abc.abstractmethod
    async def revoke(self, batch_id: str, owner: str) -> None:
        """The gateway no longer shows `owner` this batch."""

    @abc.abstractmethod
    async def list_for(
        self, owner: str, provider: str | None, *, before: tuple[float, float, str] | None, limit: int
    ) -> list[BatchRecord]:
        """The batches `owner` has been shown, newest first (the batch's created_at, then when this service first
        saw it, then id), after the position `before`."""

    @abc.abstractmethod
    async def changed_since(self, owner: str, seq: int, limit: int) -> list[tuple[str, str]]:
        """(id, provider) of the batches `owner` was shown that have a revision after `seq`."""

    @abc.abstractmethod
    async def saved_elsewhere(
        self, owner: str, seq: int, since: float, origin: str, limit: int, *, among: Sequence[str] | None = None
    ) -> list[tuple[str, str]]:
        """(id, provider) of the batches `owner` was shown (`among` these, when given) that have a revision numbered
        up to `seq`, observed at `since` or later, that a process other than `origin` saved (none when the store is
        one process's own)."""

    @abc.abstractmethod
    async def providers_for(self, owner: str) -> list[str]:
        """The providers of the batches `owner` has been shown (lower case, sorted)."""

    @abc.abstractmethod
    async def batch(self, batch_id: str) -> BatchRecord | None:
        """The registry's entry for the batch, whoever was shown it."""

    @abc.abstractmethod
    async def access(self, batch_id: str, owner: str) -> Access | None:
        """When the gateway last showed `owner` this batch (since it last refused the owner's key), and its
        provider; None if it never did (nothing of a batch leaks to callers never shown it)."""

    @abc.abstractmethod
    async def refuse_key(self, owner: str, at: float) -> None:
        """The gateway refused `owner`'s key (401) at `at`: what it showed the owner before then no longer counts
        (`access`), until it shows it again. Other processes on the store are told (`follow`)."""

    @abc.abstractmethod
    async def live_batches(self, owner: str, limit: int) -> list[tuple[str, str]]:
        """(id, provider) of the batches `owner` was shown that are not terminal, newest first."""

    # -- idempotency --------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def claim(
        self, owner: str, request_id: str, fingerprint: str, provider: str, *, holder: str, attempt_seconds: float
    ) -> Claim:
        """Take (owner, request_id) for a create attempt named `holder`, running at most `attempt_seconds` from
        now: when nobody holds it, or its last attempt is over and made no batch known. Otherwise the row as it
        is (another attempt is running, a batch is known, or a different request holds the key). Of concurrent
        attempts, from any process, at most one holds it at a time."""

    @abc.abstractmethod
    async def settle_claim(self, owner: str, request_id: str, batch_id: str) -> None:
        """The create of (owner, request_id) made batch `batch_id` (already in the registry)."""

    @abc.abstractmethod
    async def release_claim(self, owner: str, request_id: str, holder: str) -> None:
        """`holder`'s create certainly made nothing: let a retry start over (as if it had never been claimed)."""

    @abc.abstractmethod
    async def end_attempt(self, owner: str, request_id: str, holder: str, *, after: float) -> None:
        """`holder`'s attempt got no reply: it is over `after` seconds from now (what it sent may still land
        upstream meanwhile), and the next attempt then looks for what it made."""

    @abc.abstractmethod
    async def renew_claim(self, owner: str, request_id: str, holder: str, *, attempt_seconds: float) -> bool:
        """`holder`'s attempt goes on for `attempt_seconds` from now (a create of many parts holds its claim so,
        renewed before each part it sends); False when it no longer holds the claim."""

    # -- revisions ----------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def latest_revision(self, batch_id: str) -> Revision | None:
        """The batch's newest revision, if any."""

    @abc.abstractmethod
    async def revisions_after(self, batch_id: str, rev: int) -> list[Revision]:
        """The batch's revisions after `rev`, oldest first."""

    @abc.abstractmethod
    async def last_seq(self) -> int:
        """The seq of the newest revision of any batch (0: none)."""

    @abc.abstractmethod
    async def revision_at_or_before(self, batch_id: str, seq: int) -> Revision | None:
        """The batch's state as of `seq`: its newest revision with a seq not after it."""

    # -- retention ----------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def sweep(self, *, now: float, keep_seconds: float, idempotency_seconds: float, claim_seconds: float) -> int:
        """Forget what is past its time: access not verified for `keep_seconds` (and key refusals as old), batches
        nobody may see any more (with their revisions and results), settled idempotency keys older than
        `idempotency_seconds`, and claims whose create stayed ambiguous for `claim_seconds`. Returns how many rows
        went."""

    @abc.abstractmethod
    async def counts(self) -> dict[str, int]:
        """Rows per table (for tests and operators)."""

    # -- results cache ------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def result_set(self, batch_id: str) -> int | None:
        """How many results are cached for the batch, once the whole set is in; None otherwise."""

    @abc.abstractmethod
    async def begin_results(self, batch_id: str) -> None:
        """Start (over) the batch's result set; it is not served until `finish_results`."""

    @abc.abstractmethod
    async def add_result_chunk(self, batch_id: str, first_index: int, count: int, payload: bytes) -> None:
        """One chunk of the set being written: `count` results from `first_index`, as the bytes to send."""

    @abc.abstractmethod
    async def finish_results(self, batch_id: str, *, items: int, nbytes: int) -> None:
        """The set is whole: serve it from now on."""

    @abc.abstractmethod
    async def drop_results(self, batch_id: str) -> None:
        """Forget the batch's result set, whole or not."""

    @abc.abstractmethod
    async def result_chunks(self, batch_id: str, start: int, *, limit: int) -> list[tuple[int, int, bytes]]:
        """(first_index, count, payload) of the cached chunks from the one holding result `start` on."""

    @abc.abstractmethod
    async def trim_results(self, *, max_bytes: int, max_age: float) -> int:
        """Drop cached result sets older than max_age, then the oldest until the rest fit max_bytes."""

    @abc.abstractmethod
    async def results_bytes(self) -> int:
        """Bytes of results the cache holds."""

    # -- a fleet of replicas on one store -------------------------------------------------------------------
    async def hold_lease(self, name: str, holder: str, seconds: float) -> bool:
        """Take the lease `name` for `holder` ("<replica>/<generation>"), or renew it, for `seconds` from now;
        False while another replica's lease runs (a newer generation of the same replica takes it over). A store
        that is one process's own (SQLite) has no one to share with: always True."""
        return True

    async def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up if `holder` (that very generation) holds it, so another may take it at once."""
        return None

    async def follow(self, notice: Callable[[Notice], None]) -> None:
        """Call `notice` for each revision another process saves, and each key refusal it hears of, from now on
        (PostgreSQL: LISTEN/NOTIFY), until `close`. A store that is one process's own has no other process: nothing
        is called."""
        return None
