"""The soak's judgement: what the clients recorded (bench/soak_client.py) against the simulator's own records and
the revisions the service stored, as figures and a list of violations (each with what was expected and seen).

- creates: every acknowledged create is upstream exactly once for its request_id, under the id acknowledged; no
  request_id is upstream twice (those whose every attempt failed included);
- watches: revisions strictly increase across resumes, none missing (every stored revision of a state not
  delivered before is delivered), no state twice in a row, and the last state is the simulator's; WatchBatches
  (listed, or of every live batch) never goes back, and delivers every batch's end;
- results: complete and identical to the simulator's document;
- batches of several parts (#31): one per request_id, each part made once, every request one outcome in request
  order, transient failures run again to success with their tries counted;
- calls: none UNKNOWN or INTERNAL; errors only during a fault (and RECOVERY after it), and then only UNAVAILABLE,
  DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED, the service's own (with an ErrorInfo) carrying RetryInfo;
- RSS: each replica's at the end within 1.5x of its RSS after the warm-up (before the first fault);
- a key revoked at the gateway halfway (#29): no call of it succeeds, and no batch data reaches it, past
  OWNER_TRUST_SECONDS (and a poll interval) after the revocation; its WatchBatches ends UNAUTHENTICATED by then
  (unless a fault kept the gateway from saying so); before the revocation it is served.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.report import percentile
from bench.soak_client import digest, state_of
from bench.soak_faults import Fault, during, windows
from otari_batch_grpc.server.domain.core.observations import same_state
from otari_batch_grpc.server.store.migrations import POSTGRES_SCHEMA
from otari_batch_grpc.server.util.stamps import PART_KEY
from otari_batch_grpc.v1 import batch_pb2

MASTER = {"authorization": "Bearer sim-master-key"}
FAULT_CODES = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"}
EXPECTED = {("CancelBatch", "FAILED_PRECONDITION", "BATCH_ALREADY_FINISHED")}  # a cancel that came too late
UNARY = ("CreateBatch", "GetBatch", "ListBatches", "CancelBatch")
RSS_RATIO = 1.5
SHOWN = 40  # violations printed in full (all are counted, grouped)
RANK = {"VALIDATING": 1, "IN_PROGRESS": 2, "FINALIZING": 3, "CANCELLING": 3}  # terminal ones: 4
LATE = 40.0  # a batch acknowledged this long before a WatchBatches closed must have reached it, and ended in it
TRUST_SECONDS = 10.0  # the replicas' OWNER_TRUST_SECONDS
POLL_MAX = 3.0  # their WATCH_POLL_MAX
SLACK = 2.0  # for the replicas' and the client's clocks, and the last event in flight


def status_of(json_status: str) -> str:
    return "BATCH_STATUS_" + json_status.upper()


def rank(status: str) -> int:
    return RANK.get(status.removeprefix("BATCH_STATUS_"), 4)


def sim_state(batch: dict[str, Any]) -> list[Any]:
    counts = batch["request_counts"]
    return [status_of(batch["status"]), counts["completed"], counts["failed"], counts["total"]]


def sim_key(item: dict[str, Any]) -> list[Any]:
    """bench.soak_client.result_key of a simulator results item."""
    if item.get("error"):
        return [item["custom_id"], None, None, None, item["error"]["code"], item["error"]["message"]]
    done = item["result"]
    content = done["choices"][0]["message"]["content"] if done["choices"] else None
    return [item["custom_id"], done["id"], content, done["usage"]["total_tokens"], None, None]


class Report:
    def __init__(self, faults: list[Fault], begin: float, *, revoked_at: float | None = None) -> None:
        self.faults, self.begin, self.revoked_at = faults, begin, revoked_at
        self.records: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.violations: list[str] = []
        self.upstream: dict[str, dict[str, Any]] = {}  # the simulator's batches by id
        self.results: dict[str, list[list[Any]]] = {}
        self.revisions: dict[str, list[tuple[int, batch_pb2.Batch]]] = defaultdict(list)
        self.revision_at: dict[tuple[str, int], int] = {}  # (batch, observed_at in ns) -> its revision

    def violation(self, what: str, expected: str, seen: str) -> None:
        self.violations.append(f"{what}: expected {expected}, saw {seen}")

    def load(self, outs: list[Path], exits: list[int | None]) -> None:
        for index, (out, code) in enumerate(zip(outs, exits, strict=True)):
            lines = out.read_text().splitlines() if out.exists() else []
            for line in lines:
                record = json.loads(line)
                self.records[record.pop("k")].append(record)
            if code != 0 or not lines or json.loads(lines[-1])["k"] != "done":
                self.violation(f"client {index}", "it to finish its work and exit 0", f"exit {code}")

    async def gather(self, sim: httpx.AsyncClient, db_url: str, work: Path) -> None:
        """The simulator's batches (every one, by the master key), the results documents read, the revisions of
        the batches watched."""
        after: str | None = None
        while True:
            params: dict[str, Any] = {"provider": "openai", "limit": 100, **({"after": after} if after else {})}
            page = (await sim.get("/v1/batches", params=params, headers=MASTER)).json()["data"]
            if not page:
                break
            self.upstream.update((b["id"], b) for b in page)
            after = page[-1]["id"]
        read = sorted({r["id"] for r in self.records["results"]})

        async def document(batch_id: str) -> None:
            reply = await sim.get(f"/v1/batches/{batch_id}/results", params={"provider": "openai"}, headers=MASTER)
            if reply.status_code == 200:
                self.results[batch_id] = [sim_key(item) for item in reply.json()["results"]]

        for start in range(0, len(read), 20):
            await asyncio.gather(*(document(b) for b in read[start : start + 20]))
        watched = sorted({w["id"] for w in self.records["watch"] if not w.get("many")})
        conn = await asyncpg.connect(db_url, server_settings={"search_path": POSTGRES_SCHEMA})
        try:
            rows = await conn.fetch(
                "SELECT batch_id, rev, snapshot, observed_at FROM revisions WHERE batch_id = ANY($1) "
                "ORDER BY batch_id, rev",
                watched,
            )
        finally:
            await conn.close()
        with (work / "revisions.jsonl").open("w") as out:  # kept with the records, for a failed run's reader
            for row in rows:
                batch = batch_pb2.Batch.FromString(row["snapshot"])
                self.revisions[row["batch_id"]].append((row["rev"], batch))
                self.revision_at[(row["batch_id"], int(row["observed_at"] * 1e9))] = row["rev"]
                out.write(json.dumps([row["batch_id"], row["rev"], row["observed_at"], state_of(batch)]) + "\n")

    # -- the invariants --------------------------------------------------------------------------------------
    def check_creates(self) -> Counter[str]:
        by_request: dict[str, list[str]] = defaultdict(list)
        for batch in self.upstream.values():
            if PART_KEY in batch["metadata"]:
                continue  # a part of a batch of several (check_wholes)
            stamp = batch["metadata"].get("otari_request_id", "")
            by_request[stamp.partition("/")[0]].append(batch["id"])
        figures: Counter[str] = Counter({"lost": 0, "duplicated": 0})
        for create in self.records["create"]:
            found = by_request.pop(create["rid"], [])
            figures["acknowledged" if create["id"] else "not acknowledged"] += 1
            if create["id"] and create["tries"] > 1:
                figures["acknowledged after a failed attempt"] += 1
            if len(found) > 1:
                figures["duplicated"] += 1
            if create["id"] and found != [create["id"]]:
                figures["lost"] += create["id"] not in found
                self.violation(f"create {create['rid']}", f"upstream exactly [{create['id']}]", f"{found}")
            elif len(found) > 1:
                self.violation(f"create {create['rid']} (never acknowledged)", "at most one batch", f"{found}")
        for create in self.records["rcreate"]:  # the revokee's (bench/soak_client.py Revokee): one batch each too
            found = by_request.pop(create["rid"], [])
            if len(found) > 1 or (create["id"] and found != [create["id"]]):
                self.violation(f"revokee create {create['rid']}", f"upstream exactly [{create['id']}]", f"{found}")
        for request_id, found in by_request.items():
            self.violation(f"upstream batches {found}", "a request_id some client sent", repr(request_id))
        return figures

    def check_wholes(self) -> Counter[str]:
        """Batches of several parts: each part made once (its index once among the parts stamped with the batch's
        id), parts only of batches some create was answered with (or of creates never answered, at most one each);
        every request one outcome, in request order, the transient failures run again until they succeeded, and
        the count of tries each took."""
        parts: dict[str, Counter[int]] = defaultdict(Counter)
        for batch in self.upstream.values():
            whose, _, index = batch["metadata"].get(PART_KEY, "").rpartition("/")
            if whose:
                parts[whose][int(index)] += 1
        figures: Counter[str] = Counter()
        creates = self.records["wcreate"]
        acked = {c["id"]: c for c in creates if c["id"]}
        for batch_id, indexes in parts.items():
            figures["parts"] += sum(indexes.values())
            figures["re-runs"] += sum(1 for i in indexes if i >= 3)  # (2 or 3 first parts: a loose count)
            if any(n > 1 for n in indexes.values()):
                self.violation(f"parts of {batch_id}", "each made once", f"{dict(indexes)}")
            if sorted(indexes) != list(range(len(indexes))):
                self.violation(f"parts of {batch_id}", "indexes 0, 1, ... with none missing", f"{sorted(indexes)}")
        strays = [b for b in parts if b not in acked]
        if len(strays) > sum(1 for c in creates if not c["id"]):
            self.violation("batches of parts", "only those some create was answered with", f"{strays}")
        read = {r["id"]: r for r in self.records["wresults"]}
        for batch_id, create in acked.items():
            figures["acknowledged"] += 1
            result = read.get(batch_id)
            if result is None:
                continue  # (the flow ended before its batch did)
            what, n = f"batch of parts {batch_id}", create["n"]
            if result["end"] != "BATCH_STATUS_COMPLETED":
                self.violation(what, "BATCH_STATUS_COMPLETED", result["end"] or "no end")
                continue
            figures["completed and read"] += 1
            ids = [o[0] for o in result["outcomes"]]
            if ids != [f"q{i:02d}" for i in range(n)]:
                self.violation(what, f"{n} results in request order", f"{ids}")
                continue
            for custom_id, code, attempts in result["outcomes"]:
                want = create["transient"].get(custom_id, 0) + 1
                if code or attempts != want:
                    self.violation(
                        f"{what} {custom_id}", f"a completion after {want} tries", f"{code!r} after {attempts}"
                    )
        return figures

    def check_watches(self) -> None:
        for watch in self.records["watch"]:
            batch_id, events = watch["id"], watch["ev"]
            what = f"{'WatchBatches listing' if watch.get('many') else 'WatchBatch of'} {batch_id}"
            upstream = self.upstream.get(batch_id)
            final = sim_state(upstream) if upstream else None
            if watch.get("stalled") or watch.get("error") or not events:
                self.violation(what, f"it to end at {final}", f"{watch.get('error') or 'no end'}, last {events[-1:]}")
                continue
            states = [e[2:] for e in events]
            if states[-1] != final:
                self.violation(what, f"its last state to be the simulator's {final}", f"{states[-1]}")
            for before, after in itertools.pairwise(states):
                if before == after and not watch.get("many"):
                    self.violation(what, "no state twice in a row", f"{after} twice")
                if rank(after[0]) < rank(before[0]):
                    self.violation(what, "no status going back", f"{before[0]} then {after[0]}")
            if not watch.get("many"):
                self._revisions(what, batch_id, [self.revision_at.get((batch_id, e[0])) for e in events])
        for wait in self.records["wait"]:
            upstream = self.upstream.get(wait["id"])
            status = status_of(upstream["status"]) if upstream else None
            if wait["end"] != status:
                self.violation(f"WaitBatch of {wait['id']}", f"done at {status}", wait["end"] or "never done")

    def _revisions(self, what: str, batch_id: str, tokens: list[int | None]) -> None:
        revs = [rev for rev in tokens if rev is not None]
        if len(revs) < len(tokens) or any(b >= a for b, a in itertools.pairwise(revs)):
            self.violation(what, "revisions strictly increasing", f"{tokens}")
            return
        stored = self.revisions.get(batch_id, [])
        # Runs of stored revisions of one state (two replicas may save the same state): one of each run, from the
        # one the watch started at to the one it ended at, must have been delivered.
        runs: list[tuple[batch_pb2.Batch, list[int]]] = []
        for rev, snapshot in stored:
            if runs and same_state(runs[-1][0], snapshot):
                runs[-1][1].append(rev)
            else:
                runs.append((snapshot, [rev]))
        delivered = set(revs)
        missing = [
            run[0]
            for _state, run in runs
            if run[-1] >= revs[0] and run[0] <= revs[-1] and not delivered.intersection(run)
        ]
        unknown = delivered - {rev for rev, _ in stored}
        if missing or unknown:
            states = {rev: f"{rev}: {' '.join(map(str, state_of(b)))}" for rev, b in stored}
            expected = f"every stored revision of a new state, {[states[r] for r in missing]} among them"
            self.violation(what, expected, f"revisions {revs} ({sorted(unknown)} not stored)")

    def check_many(self) -> None:
        acked = {c["id"]: c["at"] for c in self.records["create"] if c["id"]}
        for stream in self.records["many"]:
            opened, closed = stream["opened"], stream["closed"]
            batches = stream["batches"]
            for batch_id, events in batches.items():
                states = [e[1:5] for e in events if e[0] in (1, 2)]  # snapshots and changes
                for before, after in itertools.pairwise(states):
                    if rank(after[0]) < rank(before[0]):
                        self.violation(f"WatchBatches (all) for {batch_id}", "no going back", f"{before} then {after}")
            for batch_id, at in acked.items():
                if not opened + 5 < at < closed - LATE:
                    continue
                upstream = self.upstream.get(batch_id)
                final = sim_state(upstream) if upstream else None
                states = [e[1:5] for e in batches.get(batch_id, []) if e[0] in (1, 2)]
                if not states or states[-1] != final:
                    self.violation(f"WatchBatches (all) for {batch_id}", f"it, ending at {final}", f"{states[-1:]}")

    def check_results(self) -> None:
        for read in self.records["results"]:
            expected = self.results.get(read["id"])
            if expected is None or read.get("error"):
                self.violation(f"results of {read['id']}", "a completed read", read.get("error", "no document"))
                continue
            if read["n"] != len(expected) or read["digest"] != digest(expected) or read["total"] != len(expected):
                seen = f"{read['n']} items (total {read['total']}, digest {read['digest']})"
                self.violation(f"results of {read['id']}", f"{len(expected)} items, digest {digest(expected)}", seen)

    def check_calls(self) -> tuple[Counter[tuple[str, str]], dict[str, list[float]]]:
        spans = windows(self.faults)
        outcomes: Counter[tuple[str, str]] = Counter()
        latencies: dict[str, list[float]] = {"without faults": [], "with faults": []}
        for call in self.records["call"]:
            method, code, start, end = call["m"], call["c"], call["s"], call["s"] + call["d"]
            outcomes[(method, code)] += 1
            faulty = during(spans, start, end)
            if method in UNARY:
                latencies["with faults" if faulty else "without faults"].append(call["d"])
            if code in ("OK", "DROPPED_BY_CLIENT") or (method, code, call.get("r", "")) in EXPECTED:
                continue
            seen = f"{code} {call.get('r', '')} {call.get('msg', '')!r} at {start - self.begin:.1f}s"
            if code in ("UNKNOWN", "INTERNAL"):
                self.violation(f"{method}", "no UNKNOWN or INTERNAL", seen)
            elif not faulty:
                self.violation(f"{method} with no fault", "no error", seen)
            elif code not in FAULT_CODES:
                self.violation(f"{method} during a fault", " / ".join(sorted(FAULT_CODES)), seen)
            elif call.get("ei") and code != "DEADLINE_EXCEEDED" and not call.get("ri"):
                self.violation(f"{method} during a fault", "RetryInfo with it", seen)
        for gave_up in self.records["gaveup"]:
            self.violation("a call", "success within the retry budget", gave_up["what"])
        return outcomes, latencies

    def check_revoked(self) -> dict[str, Any]:
        """The revokee (bench/soak_client.py Revokee): served before the revocation, refused within the bound after
        it, nothing of its batches delivered past the bound, its stream ended by then."""
        calls, data = self.records["rcall"], self.records["rdata"]
        if self.revoked_at is None:
            if calls:
                self.violation("the revokee", "its key revoked halfway", "no revocation")
            return {}
        revoked, bound = self.revoked_at, TRUST_SECONDS + POLL_MAX + SLACK
        spans = windows(self.faults)
        served_before = sum(1 for c in calls if c["c"] == "OK" and c["s"] + c["d"] < revoked)
        if not served_before:
            self.violation("the revokee", "calls served before its key was revoked", "none")
        for call in calls:
            late = call["s"] - revoked
            if call["c"] == "OK" and late > bound:
                self.violation(
                    f"revokee {call['m']}", f"refused {bound:.0f}s after the revocation", f"OK at +{late:.1f}s"
                )
            if call["c"] == "UNAUTHENTICATED" and call["s"] + call["d"] < revoked:
                self.violation(
                    f"revokee {call['m']}", "served before the revocation", f"UNAUTHENTICATED at {late:.1f}s"
                )
        for item in data:
            if item["at"] - revoked > bound:
                self.violation(
                    f"revokee {item['m']}",
                    f"no batch data {bound:.0f}s after the revocation",
                    f"data at +{item['at'] - revoked:.1f}s",
                )
        open_then = [c for c in calls if c["m"] == "WatchBatches" and c["s"] < revoked < c["s"] + c["d"]]
        for stream in open_then:
            ended = stream["s"] + stream["d"] - revoked
            if ended > bound and not during(spans, revoked, revoked + ended):
                self.violation("revokee WatchBatches", f"ended by +{bound:.0f}s", f"{stream['c']} at +{ended:.1f}s")
        after = [c for c in calls if c["s"] - revoked > bound]
        return {
            "served before": served_before,
            "refused after the bound": sum(1 for c in after if c["c"] != "OK"),
            "last data at": f"+{max((d['at'] - revoked for d in data), default=0.0):.1f}s",
            "stream ended at": ", ".join(f"+{s['s'] + s['d'] - revoked:.1f}s {s['c']}" for s in open_then) or "-",
        }

    # -- the figures -----------------------------------------------------------------------------------------
    def judge(self, rss: dict[int, tuple[float | None, float | None, int]], *, wall: float) -> int:
        creates = self.check_creates()
        wholes = self.check_wholes()
        self.check_watches()
        self.check_many()
        self.check_results()
        outcomes, latencies = self.check_calls()
        revokee = self.check_revoked()
        print(f"\nsoak: {wall:.0f} s, {len(self.upstream)} batches upstream")
        print("faults injected:", dict(Counter(f.kind for f in self.faults if f.began)))
        print("creates:", dict(creates))
        print("batches of several parts:", dict(wholes))
        watches, reads = self.records["watch"], self.records["results"]
        print(
            f"watches: {len(watches)} followed to their end ({sum(w.get('resumes', 0) for w in watches)} resumes), "
            f"{len(self.records['wait'])} waits, {len(reads)} results reads "
            f"({sum(r.get('resumes', 0) for r in reads)} resumes)"
        )
        print(f"revokee (OWNER_TRUST_SECONDS {TRUST_SECONDS:g}): {revokee}")
        print("calls by method and outcome:")
        for method in sorted({m for m, _ in outcomes}):
            row = ", ".join(f"{code} {n}" for (m, code), n in sorted(outcomes.items()) if m == method)
            print(f"  {method:<14} {row}")
        print("latency of unary calls (every attempt):")
        for label, values in latencies.items():
            if values:
                p50, p99 = percentile(values, 50) * 1000, percentile(values, 99) * 1000
                print(f"  {label:<15} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  ({len(values)} calls)")
        print("RSS (MiB) of each replica after the warm-up (before the first fault) and at the end:")
        for index, (end, warm, incarnations) in sorted(rss.items()):
            ratio = f"{end / warm:.2f}x" if end and warm else "?"
            print(f"  replica {index}: {warm or 0:.1f} -> {end or 0:.1f} ({ratio}, started {incarnations} times)")
            if end is None or warm is None:
                self.violation(f"replica {index}", "alive at the end, past its warm-up", f"RSS {warm} -> {end}")
            elif end > RSS_RATIO * warm:
                self.violation(f"replica {index} RSS", f"<= {RSS_RATIO}x {warm:.1f} MiB", f"{end:.1f} MiB")
        print(f"violations: {len(self.violations)}")
        for what, n in Counter(
            re.split(r" o?batch_", line.split(":", 1)[0])[0] for line in self.violations
        ).most_common():
            print(f"  {n:5d}  {what}")
        for line in self.violations[:SHOWN]:
            print(f"  {line}")
        if len(self.violations) > SHOWN:
            print(f"  ... and {len(self.violations) - SHOWN} more (the records are kept: see below)")
        return 1 if self.violations else 0
