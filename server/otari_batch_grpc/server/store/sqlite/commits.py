"""SQLite's writes committed in groups: the transactions asked for while the connection's thread is busy go
together into its next commit, each in a savepoint of its own (one that raises, or whose caller left, is rolled
back alone), and each is answered once that commit is done. A commit costs the connection's thread a wake-up and
SQLite a WAL append: a burst of saves (a thousand batches ending at once, each a revision and its outbox events)
pays that once per group, not once per save. Nothing waits to be grouped: a write asked for on an idle thread
runs at once, alone."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class Left(Exception):
    """The caller of a transaction was cancelled before it committed: rolled back."""


class Queued:
    """A transaction asked for: its work, its answer, and whether its caller left (see Left)."""

    __slots__ = ("answer", "left", "work")

    def __init__(self, work: Callable[[sqlite3.Connection], Any]) -> None:
        self.work = work
        self.answer: Future[Any] = Future()
        self.left = threading.Event()


class GroupCommit:
    """Transactions queued from the event loop, run on the connection's thread in groups (see the module)."""

    def __init__(self, thread: ThreadPoolExecutor, db: sqlite3.Connection) -> None:
        self._thread, self._db = thread, db
        self._lock = threading.Lock()
        self._queued: list[Queued] = []
        self._draining = False  # a drain is asked of the thread already: what is queued meanwhile goes with it

    def submit(self, work: Callable[[sqlite3.Connection], Any]) -> Queued:
        """Queue `work`; raises RuntimeError once the connection's thread is gone (the store closed)."""
        queued = Queued(work)
        with self._lock:
            self._queued.append(queued)
            if self._draining:
                return queued
            self._draining = True
        try:
            self._thread.submit(self._drain)
        except RuntimeError as exc:  # (the store closed: this fails, and what queued behind it meanwhile)
            self._fail_queued(exc)
            raise
        return queued

    def _drain(self) -> None:
        """On the thread: what is queued, committed together; then the next group (behind what the thread was asked
        meanwhile: reads are not held back by a stream of writes)."""
        with self._lock:
            group, self._queued = self._queued, []
        try:
            _commit(self._db, group)
        finally:
            with self._lock:
                self._draining = bool(self._queued)
            if self._draining:
                try:
                    self._thread.submit(self._drain)
                except RuntimeError as exc:  # (the store closed meanwhile)
                    self._fail_queued(exc)

    def _fail_queued(self, exc: BaseException) -> None:
        with self._lock:
            failed, self._queued, self._draining = self._queued, [], False
        for queued in failed:
            if queued.answer.set_running_or_notify_cancel():  # (one whose caller left is answered already)
                queued.answer.set_exception(exc)


Outcome = tuple[Queued, BaseException | None, Any]


def _commit(db: sqlite3.Connection, group: list[Queued]) -> None:
    """The group's works, committed together. A work whose caller left (cancelled) by the time they have all run
    is not committed: the group is rolled back and run again without it (a work is a function of the database,
    whose only effects are its writes), so no caller is told "cancelled" of a write that stays, unless the cancel
    came as its group committed."""
    begun = [queued for queued in group if queued.answer.set_running_or_notify_cancel()]  # (not begun: never runs)
    while begun:
        try:
            outcomes = _run(db, begun)
            leavers = [queued for queued, _, _ in outcomes if queued.left.is_set()]
            if not leavers:
                db.execute("COMMIT")
        except BaseException as exc:
            _rollback(db)
            for queued in begun:
                queued.answer.set_exception(exc)
            return
        if not leavers:
            for queued, error, result in outcomes:
                if error is None:
                    queued.answer.set_result(result)
                else:
                    queued.answer.set_exception(error)
            return
        _rollback(db)
        for queued in leavers:
            queued.answer.set_exception(Left())
        begun = [queued for queued in begun if queued not in leavers]


def _run(db: sqlite3.Connection, works: list[Queued]) -> list[Outcome]:
    """In one transaction, left open: each work in a savepoint of its own (none when it is alone: the transaction
    is its own), one that raises rolled back alone. Raises what ended the whole transaction (one alone that raised;
    an error after which SQLite rolled everything back, an I/O error say)."""
    alone = len(works) == 1
    outcomes: list[Outcome] = []
    db.execute("BEGIN IMMEDIATE")
    for queued in works:
        if not alone:
            db.execute("SAVEPOINT work")
        try:
            result = queued.work(db)
        except Exception as exc:
            if alone or not db.in_transaction:
                raise
            db.execute("ROLLBACK TO work")
            db.execute("RELEASE work")
            outcomes.append((queued, exc, None))
        else:
            if not alone:
                db.execute("RELEASE work")
            outcomes.append((queued, None, result))
    return outcomes


def _rollback(db: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):  # (rolled back already by SQLite, or the connection closed)
        db.execute("ROLLBACK")
