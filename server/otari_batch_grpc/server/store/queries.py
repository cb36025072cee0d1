"""The SQL both backends run alike, written once. Parameters are numbered the PostgreSQL way (`$1`); `for_sqlite`
numbers them SQLite's (`?1`), which binds them by position just the same. What differs (a claim, a revision's
number, leases, times by the database's clock) stays with its backend."""

from __future__ import annotations

import functools
import re

BATCH_COLUMNS = "b.id, b.provider, b.creator, b.status, b.terminal, b.snapshot, b.first_seen, b.last_seen, b.created_at"
REVISION_COLUMNS = "batch_id, rev, snapshot, observed_at, seq"

# -- registry and access ------------------------------------------------------------------------------------------
# The access of an owner to a batch, as long as the gateway showed it after it last refused the owner's key.
ACCESS = """
SELECT CASE WHEN a.verified_at > COALESCE(k.refused_at, 0) THEN a.verified_at ELSE 0.0 END, b.provider
FROM access a JOIN batches b ON b.id = a.batch_id LEFT JOIN key_refusals k ON k.owner = a.owner
WHERE a.batch_id = $1 AND a.owner = $2
"""
REVOKE = "DELETE FROM access WHERE batch_id = $1 AND owner = $2"
BATCH = f"SELECT {BATCH_COLUMNS} FROM batches b WHERE b.id = $1"
CHANGED_SINCE = (
    "SELECT b.id, b.provider FROM batches b JOIN access a ON a.batch_id = b.id WHERE a.owner = $1 "
    "AND EXISTS (SELECT 1 FROM revisions r WHERE r.batch_id = b.id AND r.seq > $2) "
    "ORDER BY b.created_at DESC LIMIT $3"
)
PROVIDERS_FOR = (
    "SELECT DISTINCT lower(b.provider) FROM batches b JOIN access a ON a.batch_id = b.id WHERE a.owner = $1 ORDER BY 1"
)
LIVE_BATCHES = (
    "SELECT b.id, b.provider FROM batches b JOIN access a ON a.batch_id = b.id "
    "WHERE a.owner = $1 AND NOT b.terminal ORDER BY b.first_seen DESC LIMIT $2"
)


def list_for(*, provider: bool, before: bool) -> str:
    """The batches an owner ($1) has been shown, newest first, of one provider (then $2), after a position (then
    the next three), at most a number (the last)."""
    where, n = ["a.owner = $1"], 1
    if provider:
        n += 1
        where.append(f"lower(b.provider) = lower(${n})")
    if before:
        where.append(
            f"(b.created_at, b.first_seen, b.id) < "
            f"(CAST(${n + 1} AS DOUBLE PRECISION), CAST(${n + 2} AS DOUBLE PRECISION), CAST(${n + 3} AS TEXT))"
        )
        n += 3
    return (
        f"SELECT {BATCH_COLUMNS} FROM batches b JOIN access a ON a.batch_id = b.id WHERE {' AND '.join(where)} "
        f"ORDER BY b.created_at DESC, b.first_seen DESC, b.id DESC LIMIT ${n + 1}"
    )


# -- idempotency --------------------------------------------------------------------------------------------------
SETTLE_CLAIM = "UPDATE idempotency SET batch_id = $1 WHERE owner = $2 AND request_id = $3"
RELEASE_CLAIM = "DELETE FROM idempotency WHERE owner = $1 AND request_id = $2 AND holder = $3 AND batch_id IS NULL"

# -- batches of several parts ---------------------------------------------------------------------------------
WHOLE_COLUMNS = "id, owner, provider, request_id, requests, header, created_at, cancel_asked, max_attempts"
ADD_WHOLE = (
    f"INSERT INTO wholes ({WHOLE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING"
)
ADD_PART = (
    "INSERT INTO parts (batch_id, idx, first, count, custom_ids, bodies, attempt, rerun_of, indices) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (batch_id, idx) DO NOTHING"
)
WHOLE = f"SELECT {WHOLE_COLUMNS} FROM wholes WHERE id = $1"
PARTS = (
    "SELECT idx, first, count, upstream_id, sent_at, snapshot, terminal, attempt, rerun_of, examined "
    "FROM parts WHERE batch_id = $1 ORDER BY idx"
)
PART_BODIES = "SELECT bodies FROM parts WHERE batch_id = $1 AND idx = $2"
PART_MADE_AS = (
    "SELECT w.id, w.owner, p.idx FROM parts p JOIN wholes w ON w.id = p.batch_id WHERE p.upstream_id = $1 LIMIT 1"
)
KEEP_BODIES = "UPDATE parts SET bodies = $3 WHERE batch_id = $1 AND idx = $2 AND bodies IS NULL"
PART_INDICES = "SELECT indices FROM parts WHERE batch_id = $1 AND idx = $2"
EXAMINE_PART = "UPDATE parts SET examined = $3 WHERE batch_id = $1 AND idx = $2 AND NOT examined"
NEXT_PART_INDEX = "SELECT COALESCE(MAX(idx), -1) + 1 FROM parts WHERE batch_id = $1"
PART_SENT_AT = "SELECT upstream_id, sent_at FROM parts WHERE batch_id = $1 AND idx = $2"
DELEGATE = (
    "INSERT INTO delegations (batch_id, owner, sealed, created_at) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (batch_id) DO NOTHING"
)
DELEGATION = "SELECT owner, sealed FROM delegations WHERE batch_id = $1"
DROP_DELEGATION = "DELETE FROM delegations WHERE batch_id = $1"
FORGET_BODIES = "UPDATE parts SET bodies = NULL WHERE batch_id = $1 AND bodies IS NOT NULL"
DELEGATED = "SELECT batch_id FROM delegations ORDER BY created_at LIMIT $1"
PART_CUSTOM_IDS = "SELECT custom_ids FROM parts WHERE batch_id = $1 AND idx = $2"
PART_SENT = "UPDATE parts SET sent_at = $3 WHERE batch_id = $1 AND idx = $2"
PART_SEEN = (
    "UPDATE parts SET upstream_id = $3, snapshot = $4, terminal = $5 WHERE batch_id = $1 AND idx = $2 "
    "AND (upstream_id IS NULL OR upstream_id = $3)"
)
ABANDON_PART = (
    "UPDATE parts SET upstream_id = '', snapshot = $3, terminal = $4 "
    "WHERE batch_id = $1 AND idx = $2 AND upstream_id IS NULL AND sent_at < $5"
)
CANCEL_WHOLE = "UPDATE wholes SET cancel_asked = $2 WHERE id = $1"
DROP_WHOLE = "DELETE FROM wholes WHERE id = $1"

# -- revisions ----------------------------------------------------------------------------------------------------
LATEST_REVISION = f"SELECT {REVISION_COLUMNS} FROM revisions WHERE batch_id = $1 ORDER BY rev DESC LIMIT 1"
REVISIONS_AFTER = f"SELECT {REVISION_COLUMNS} FROM revisions WHERE batch_id = $1 AND rev > $2 ORDER BY rev"
REVISION_AT_OR_BEFORE = (
    f"SELECT {REVISION_COLUMNS} FROM revisions WHERE batch_id = $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1"
)
LAST_SEQ = "SELECT COALESCE(MAX(seq), 0) FROM revisions"

# -- retention ----------------------------------------------------------------------------------------------------
# Access not verified for the keep time ($1), and key refusals as old; then batches nobody may see any more, with
# their revisions and results. (Idempotency keys go by rules of each backend's clock.)
SWEEP = (
    "DELETE FROM access WHERE verified_at < $1",
    "DELETE FROM key_refusals WHERE refused_at < $1",
    "DELETE FROM batches WHERE last_seen < $1 AND NOT EXISTS (SELECT 1 FROM access WHERE access.batch_id = batches.id)",
    "DELETE FROM revisions WHERE NOT EXISTS (SELECT 1 FROM batches WHERE batches.id = revisions.batch_id)",
    "DELETE FROM result_sets WHERE NOT EXISTS (SELECT 1 FROM batches WHERE batches.id = result_sets.batch_id)",
    # a batch of several parts goes with its registry entry (its parts with it); one never entered (its create
    # never finished) once as old
    "DELETE FROM wholes WHERE created_at < $1 AND NOT EXISTS (SELECT 1 FROM batches WHERE batches.id = wholes.id)",
    "DELETE FROM delegations WHERE NOT EXISTS (SELECT 1 FROM wholes WHERE wholes.id = delegations.batch_id)",
)
TABLES = (
    "batches",
    "access",
    "idempotency",
    "revisions",
    "result_sets",
    "result_chunks",
    "key_refusals",
    "wholes",
    "parts",
    "delegations",
    "webhook_endpoints",
    "webhook_outbox",
)

# -- results cache ------------------------------------------------------------------------------------------------
RESULT_SET = "SELECT items FROM result_sets WHERE batch_id = $1 AND complete"
DROP_RESULTS = "DELETE FROM result_sets WHERE batch_id = $1"
BEGIN_RESULTS = "INSERT INTO result_sets (batch_id, items, bytes, fetched_at, complete) VALUES ($1, 0, 0, $2, FALSE)"
ADD_RESULT_CHUNK = "INSERT INTO result_chunks (batch_id, first_index, count, payload) VALUES ($1, $2, $3, $4)"
FINISH_RESULTS = "UPDATE result_sets SET items = $1, bytes = $2, fetched_at = $3, complete = TRUE WHERE batch_id = $4"
RESULT_CHUNKS = (
    "SELECT first_index, count, payload FROM result_chunks "
    "WHERE batch_id = $1 AND first_index + count > $2 ORDER BY first_index LIMIT $3"
)
RESULTS_BYTES = "SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM result_sets"

_NUMBERED = re.compile(r"\$(\d+)")


@functools.cache
def for_sqlite(sql: str) -> str:
    """`sql` with its parameters numbered SQLite's way (`$1` -> `?1`)."""
    return _NUMBERED.sub(r"?\1", sql)


# -- webhook endpoints (#32) ---------------------------------------------------------------------------------------
ENDPOINT_COLUMNS = (
    "id, owner, url, events, metadata_filter, description, secrets, sealed_key, enabled, disabled_reason, "
    "created_at, updated_at"
)
# Added unless its owner has `$13` already (one write: no two registrations pass the count between them on SQLite;
# on PostgreSQL two at once may, by one each).
ADD_ENDPOINT = (
    f"INSERT INTO webhook_endpoints ({ENDPOINT_COLUMNS}) "
    "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 "
    "WHERE (SELECT count(*) FROM webhook_endpoints WHERE owner = $2) < $13"
)
ENDPOINT = f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"
ENDPOINTS_OF = f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE owner = $1 ORDER BY created_at, id"
# Unless it changed since it was read (`updated_at`, $11): the caller reads it again and retries.
UPDATE_ENDPOINT = (
    "UPDATE webhook_endpoints SET url = $3, events = $4, metadata_filter = $5, description = $6, secrets = $7, "
    "enabled = $8, disabled_reason = $9, updated_at = $10, sealed_key = $12 "
    "WHERE id = $1 AND owner = $2 AND updated_at = $11"
)
DELETE_ENDPOINT = "DELETE FROM webhook_endpoints WHERE id = $1 AND owner = $2"

# -- the webhook outbox (#32) --------------------------------------------------------------------------------------
DELIVERY_COLUMNS = (
    "id, endpoint_id, batch_id, rev, kind, terminal, event, created_at, state, attempts, next_at, last_status, "
    "last_error, done_at"
)
ADD_DELIVERY = (
    "INSERT INTO webhook_outbox (endpoint_id, batch_id, rev, kind, terminal, event, created_at, state, next_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $7)"
)
# A pending event that tells of a change a newer one tells of too is not sent (a terminal one always is), unless a
# replica is trying it now (it goes first: the newer one waits for it, so they arrive in order; if that try fails,
# it is superseded then: see FINISH_DELIVERY).
SUPERSEDE_DELIVERIES = (
    "UPDATE webhook_outbox SET state = 'superseded', done_at = $4 WHERE endpoint_id = $1 AND batch_id = $2 "
    "AND rev < $3 AND state = 'pending' AND NOT terminal AND lease_until <= $4"
)
DELIVERIES_OF = f"SELECT {DELIVERY_COLUMNS} FROM webhook_outbox WHERE endpoint_id = $1 ORDER BY id DESC LIMIT $2"
# A newer event of the same endpoint and batch than the row named `row`.
_NEWER = (
    "SELECT 1 FROM webhook_outbox n WHERE n.endpoint_id = {row}.endpoint_id AND n.batch_id = {row}.batch_id "
    "AND n.id > {row}.id"
)
# Due events of enabled endpoints, in revision order per endpoint and batch: an event waits for an older one that is
# terminal or being tried; a non-terminal one a newer event tells of is stale, never sent (SWEEP_OUTBOX marks it
# superseded: a save's SUPERSEDE_DELIVERIES may not see it, on PostgreSQL, while a try of it is finishing). No more
# of one endpoint than make `$5` with those being tried already (by any replica: a slow receiver holds no more than
# that, and takes no one else's turn; on PostgreSQL, claims take turns under an advisory lock, so each counts the
# last one's leases). Leased to `$1` until `$2 + $3`; `$4` at most. (PostgreSQL locks what it
# takes: see postgres/endpoints.)
CLAIM_DELIVERIES = (
    "UPDATE webhook_outbox SET holder = $1, lease_until = $2 + $3 "
    "WHERE lease_until <= $2 AND state = 'pending' AND id IN ("
    "SELECT o.id FROM webhook_outbox o WHERE o.id IN (SELECT id FROM ("
    "SELECT c.id, row_number() OVER (PARTITION BY c.endpoint_id ORDER BY c.next_at, c.id) "
    "+ COALESCE(t.trying, 0) AS turn "
    "FROM webhook_outbox c JOIN webhook_endpoints e ON e.id = c.endpoint_id AND e.enabled "
    "LEFT JOIN (SELECT endpoint_id, count(*) AS trying FROM webhook_outbox WHERE state = 'pending' "
    "AND lease_until > $2 GROUP BY endpoint_id) t ON t.endpoint_id = c.endpoint_id "
    "WHERE c.state = 'pending' AND c.next_at <= $2 AND c.lease_until <= $2 "
    f"AND (c.terminal OR NOT EXISTS ({_NEWER.format(row='c')})) AND NOT EXISTS ("
    "SELECT 1 FROM webhook_outbox p WHERE p.endpoint_id = c.endpoint_id AND p.batch_id = c.batch_id "
    "AND p.state = 'pending' AND p.id < c.id AND (p.terminal OR p.lease_until > $2))) ranked WHERE turn <= $5) "
    "ORDER BY o.next_at, o.id LIMIT $4{lock}) "
    f"RETURNING {DELIVERY_COLUMNS}"
)
# What a claim's tries need of each event claimed (`{ids}`: its ids): its endpoint, and when the gateway last showed
# that endpoint's owner the batch (0.0: it refused the owner's key since; NULL: never, or revoked).
CLAIMED_TARGETS = (
    "SELECT o.id, " + ", ".join(f"e.{column.strip()}" for column in ENDPOINT_COLUMNS.split(",")) + ", "
    "CASE WHEN a.verified_at > COALESCE(k.refused_at, 0) THEN a.verified_at ELSE 0.0 END "
    "FROM webhook_outbox o JOIN webhook_endpoints e ON e.id = o.endpoint_id "
    "LEFT JOIN access a ON a.batch_id = o.batch_id AND a.owner = e.owner "
    "LEFT JOIN key_refusals k ON k.owner = e.owner WHERE o.id {ids}"
)
# How a try went: pending again (its next try), delivered or dropped; by its holder alone (a claim's own token).
# Pending again, it is superseded ($9: now) if a newer change of its batch came meanwhile and it is no terminal one.
FINISH_DELIVERY = (
    "UPDATE webhook_outbox SET state = $3, attempts = $4, next_at = $5, last_status = $6, last_error = $7, "
    "done_at = $8, holder = '', lease_until = 0 WHERE id = $1 AND holder = $2 AND state = 'pending'",
    "UPDATE webhook_outbox SET state = 'superseded', done_at = $2 WHERE id = $1 AND state = 'pending' "
    f"AND NOT terminal AND EXISTS ({_NEWER.format(row='webhook_outbox')})",
)
DISABLE_ENDPOINT = (
    "UPDATE webhook_endpoints SET enabled = $2, disabled_reason = $3, updated_at = $4 WHERE id = $1 AND enabled"
)
ENABLE_ENDPOINT = (
    "UPDATE webhook_endpoints SET enabled = $2, disabled_reason = '', updated_at = $3 WHERE id = $1 AND NOT enabled"
)
# Every endpoint of an owner disabled at once, the key they were registered with forgotten (the gateway refused
# it), and their pending events saying so.
DISABLE_ENDPOINTS_OF = (
    "UPDATE webhook_endpoints SET enabled = $2, disabled_reason = $3, updated_at = $4, sealed_key = $5 "
    "WHERE owner = $1 AND (enabled OR sealed_key <> $5)",
    "UPDATE webhook_outbox SET last_error = $2 WHERE state = 'pending' "
    "AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE owner = $1)",
)
# The outbox kept: a stale event (see CLAIM_DELIVERIES) no one is trying marked superseded ($1: now); and to its
# window (`$1`: now less the window, `$2`: now): a pending event older is dropped (a disabled endpoint's, say: no try
# of it dropped it), unless a replica is trying it; a finished one older is forgotten.
SWEEP_STALE = (
    "UPDATE webhook_outbox SET state = 'superseded', done_at = $1 WHERE state = 'pending' AND NOT terminal "
    f"AND lease_until <= $1 AND EXISTS ({_NEWER.format(row='webhook_outbox')})"
)
SWEEP_OUTBOX = (
    "UPDATE webhook_outbox SET state = 'dropped', done_at = $2, last_error = CASE WHEN last_error = '' "
    "THEN 'not delivered within the retry window' ELSE last_error || '; not delivered within the retry window' END "
    "WHERE state = 'pending' AND created_at < $1 AND lease_until <= $2",
    "DELETE FROM webhook_outbox WHERE state <> 'pending' AND done_at < $1",
)
# The live batches an endpoint is to be told of (its owner's, not refused them: a key the gateway refused is refused
# them all), least lately seen first, each with an endpoint of its owner's whose sealed key reads them (one that
# still has it); `$1` at most. A disabled endpoint's too: what happens meanwhile waits for it to be enabled (for the
# retry window). (A batch with a key delegated for its re-runs is followed with that key: see core.delegated.)
ENDPOINT_BATCHES = (  # (with the endpoint's owner and sealed key: no read of each endpoint after)
    "SELECT f.id, f.provider, e.id, e.owner, e.sealed_key FROM (SELECT b.id, b.provider, b.last_seen, "
    "min(e.id) AS endpoint_id FROM batches b JOIN access a ON a.batch_id = b.id AND a.verified_at > 0 "
    "JOIN webhook_endpoints e ON e.owner = a.owner AND length(e.sealed_key) > 0 WHERE NOT b.terminal "
    "AND NOT EXISTS (SELECT 1 FROM delegations d WHERE d.batch_id = b.id) "
    "GROUP BY b.id, b.provider, b.last_seen ORDER BY b.last_seen, b.id LIMIT $1) f "
    "JOIN webhook_endpoints e ON e.id = f.endpoint_id ORDER BY f.last_seen, f.id"
)
