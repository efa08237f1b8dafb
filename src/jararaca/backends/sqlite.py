"""SQLite state backend (``sqlite:///relative.db``, ``sqlite:////absolute.db``): the durable
embedded mode, and one host's beat and workers sharing a file.

The file is in WAL mode (readers never wait for the writer; a commit is one append to the
log). Each backend has one connection (:mod:`.sqlite_db`); every state change is one
``BEGIN IMMEDIATE`` transaction, so it is atomic across processes as a Redis Lua script is
across clients, and operations asked for at the same moment share a transaction (group
commit). ``synchronous=NORMAL`` by default: a commit survives the process being killed
(``kill -9``); ``?synchronous=full`` also makes it survive a power cut, for a sync per commit.
The operations themselves are in :mod:`.sqlite_queue`, :mod:`.sqlite_runs` and
:mod:`.sqlite_control`.

Times are passed in as epoch milliseconds, never read from the clock (heartbeat expiry
excepted, as Redis TTLs). Wake-up listeners are in-process: an enqueue through any backend of
this process on the same file and namespace wakes them; another process's enqueue is seen at
the beat's next look (``interval``).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Protocol, TypeVar

from jararaca.backends import sqlite_queue as queue
from jararaca.backends import sqlite_runs as runs
from jararaca.backends.base import (
    REMEMBER_DONE,
    BackendInfo,
    Claimed,
    ClaimResult,
    FireClaim,
    OnOverlap,
    RunStart,
)
from jararaca.backends.records import RunRecord
from jararaca.backends.sqlite_control import SqliteControl
from jararaca.backends.sqlite_db import BUSY_TIMEOUT_MS, Database
from jararaca.backends.sqlite_files import check_path, open_error, warn_if_network
from jararaca.backends.sqlite_schema import STATE_TABLES, prepare
from jararaca.clock import duration_ms, epoch_ms, from_epoch_ms
from jararaca.policies import PayloadPolicy, TimePolicy
from jararaca.settings import run_history
from jararaca.urls import parse_sqlite_url
from jararaca.wire import Envelope

log = logging.getLogger("jararaca.backends.sqlite")

T = TypeVar("T")
PRUNE_EVERY_MS = 1_000  # finish_run forgets expired run records at most once a second
# In-process wake-up listeners per (file, namespace): every backend of the process on that
# file shares them, as memory:// stores are shared per name.
_LISTENERS: dict[tuple[str, str], set[asyncio.Event]] = {}


class FlightWatcher(Protocol):
    """Told what the beat claims and hands over: the embedded scheduler's durable hand-off
    (:mod:`.sqlite_embedded`) keeps an in-flight entry until the worker settled it."""

    lease: timedelta  # the lease of what is claimed while watched

    def claimed(self, claimed: Sequence[Claimed]) -> None: ...

    def handed_over(self, inflight_ids: Sequence[str]) -> list[str]:
        """The ids the broker confirmed: those that may be forgotten now."""
        ...


class SqliteBackend(SqliteControl):
    """The :class:`~jararaca.backends.base.Backend` protocols on one SQLite file."""

    def __init__(self, url: str, *, namespace: str) -> None:
        config = parse_sqlite_url(url)
        self.url = url
        self.namespace = namespace
        self.path = config.path
        self.synchronous = config.synchronous
        self.history_limit = run_history()
        self.file = Path(config.path).expanduser().absolute()
        self._db = Database(self.file)
        self._watcher: FlightWatcher | None = None
        self._pruned_at = 0

    # -- connection -----------------------------------------------------------------------

    async def connect(self) -> None:
        if self._db.is_open:
            return
        self.file = check_path(self.path)
        # With synchronous=FULL a commit syncs the disk: never on the event loop's thread.
        self._db = Database(self.file, inline=self.synchronous == "normal")
        warn_if_network(self.file)
        setup = partial(
            prepare, file=self.file, synchronous=self.synchronous, busy_ms=BUSY_TIMEOUT_MS
        )
        try:
            await self._db.open(setup)
        except sqlite3.Error as exc:
            raise open_error(self.file, exc) from None

    async def close(self) -> None:
        await self._db.close()

    async def info(self) -> BackendInfo:
        return BackendInfo(
            kind="sqlite",
            in_process=False,  # on disk: it outlives the process
            evicts_keys=False,
            persists=True,
            detail=f"{self.file} (WAL, synchronous={self.synchronous})",
        )

    async def _run(self, op: Callable[[sqlite3.Connection], T], *, write: bool = True) -> T:
        return await self._db.run(op, write=write)

    def watch_flight(self, watcher: FlightWatcher | None) -> None:
        """Hand the beat's in-flight entries to ``watcher`` (None: back to normal)."""
        self._watcher = watcher

    async def delete_namespace(self) -> None:
        def op(conn: sqlite3.Connection) -> None:
            for table in STATE_TABLES:
                conn.execute(f"DELETE FROM {table} WHERE ns = ?", (self.namespace,))

        await self._run(op)

    # -- wake-ups -------------------------------------------------------------------------

    def _listeners(self) -> set[asyncio.Event]:
        return _LISTENERS.setdefault((str(self.file), self.namespace), set())

    def add_wakeup_listener(self, event: asyncio.Event) -> None:
        self._listeners().add(event)

    def remove_wakeup_listener(self, event: asyncio.Event) -> None:
        self._listeners().discard(event)

    def _wake(self) -> None:
        for event in self._listeners():
            event.set()

    # -- schedule state -------------------------------------------------------------------

    async def get_last_fires(self, action_ids: Sequence[str]) -> dict[str, datetime]:
        ids = list(action_ids)
        if not ids:
            return {}
        return await self._run(partial(queue.last_fires, ns=self.namespace, ids=ids), write=False)

    def _lease_until(self, now: datetime, lease_until: datetime) -> int:
        """What is claimed while a watcher (the embedded hand-off) follows it is leased to
        this process for good; otherwise for the lease asked."""
        return epoch_ms(now + self._watcher.lease if self._watcher else lease_until)

    async def claim_fires(
        self, claims: Sequence[FireClaim], *, now: datetime, lease_until: datetime
    ) -> list[ClaimResult]:
        if not claims:
            return []
        answers = await self._run(
            partial(
                queue.claim_fires,
                ns=self.namespace,
                claims=claims,
                now=now,
                lease_ms=self._lease_until(now, lease_until),
                history_limit=self.history_limit,
            )
        )
        if self._watcher is not None:
            won = zip(claims, answers, strict=True)
            claimed = [Claimed(c.fire_id, c.envelope) for c, a in won if a is ClaimResult.CLAIMED]
            self._watcher.claimed(claimed)
        return answers

    # -- in flight ------------------------------------------------------------------------

    async def ack_inflight(self, inflight_ids: Sequence[str]) -> None:
        ids = list(inflight_ids)
        if self._watcher is not None:
            ids = self._watcher.handed_over(ids)
        await self.forget_inflight(ids)

    async def forget_inflight(self, inflight_ids: Sequence[str]) -> None:
        """Delete in-flight entries (what ``ack_inflight`` does when nothing watches)."""
        if inflight_ids:
            await self._run(partial(queue.forget_inflight, ns=self.namespace, ids=inflight_ids))

    async def reclaim_inflight(
        self, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[Claimed]:
        if limit <= 0:
            return []
        found = await self._run(
            partial(
                queue.reclaim_inflight,
                ns=self.namespace,
                now_ms=epoch_ms(now),
                lease_ms=self._lease_until(now, lease_until),
                limit=limit,
            )
        )
        if self._watcher is not None:
            self._watcher.claimed(found)
        return found

    # -- delayed queue --------------------------------------------------------------------

    async def enqueue_delayed(
        self,
        envelope: Envelope,
        due: datetime,
        *,
        task_id: str,
        payload_policy: PayloadPolicy = "ignore",
        time_policy: TimePolicy = "replace",
    ) -> None:
        op = partial(
            queue.enqueue_delayed,
            ns=self.namespace,
            envelope=envelope,
            due_ms=epoch_ms(due),
            task_id=task_id,
            payload_policy=payload_policy,
            time_policy=time_policy,
        )
        if await self._run(op):
            self._wake()

    async def enqueue_delayed_many(self, entries: Sequence[tuple[Envelope, datetime]]) -> None:
        if not entries:
            return
        rows = [(envelope, epoch_ms(due)) for envelope, due in entries]
        if await self._run(partial(queue.enqueue_delayed_many, ns=self.namespace, entries=rows)):
            self._wake()

    async def claim_due(self, *, now: datetime, lease_until: datetime, limit: int) -> list[Claimed]:
        if limit <= 0:
            return []
        claimed = await self._run(
            partial(
                queue.claim_due,
                ns=self.namespace,
                now_ms=epoch_ms(now),
                lease_ms=self._lease_until(now, lease_until),
                limit=limit,
            )
        )
        if self._watcher is not None:
            self._watcher.claimed(claimed)
        return claimed

    async def next_due(self) -> datetime | None:
        head = await self._run(partial(queue.next_due, ns=self.namespace), write=False)
        return None if head is None else from_epoch_ms(head)

    async def pending_count(self) -> int:
        return await self._run(partial(queue.pending_count, ns=self.namespace), write=False)

    # -- runs -----------------------------------------------------------------------------

    def _call(self, fire_id: str, overlap_key: str | None, owner: str) -> runs.RunCall:
        return runs.RunCall(self.namespace, fire_id, overlap_key, owner, self.history_limit)

    async def begin_run(
        self,
        fire_id: str,
        *,
        overlap_key: str | None,
        owner: str,
        now: datetime,
        lease_until: datetime,
        on_overlap: OnOverlap = "skip",
        remember_for: timedelta = REMEMBER_DONE,
        record: RunRecord | None = None,
        ahead: bool = False,
    ) -> RunStart:
        call = self._call(fire_id, overlap_key, owner)
        op = partial(
            runs.begin_run,
            call=call,
            now_ms=epoch_ms(now),
            lease_ms=epoch_ms(lease_until),
            keep_ms=duration_ms(remember_for),
            on_overlap=on_overlap,
            record=record,
            ahead=ahead,
        )
        return await self._run(op)

    async def renew_run(
        self, fire_id: str, *, overlap_key: str | None, owner: str, lease_until: datetime
    ) -> bool:
        call = self._call(fire_id, overlap_key, owner)
        return await self._run(partial(runs.renew_run, call=call, lease_ms=epoch_ms(lease_until)))

    async def cancel_requested(self, fire_id: str, *, overlap_key: str) -> bool:
        op = partial(runs.cancel_requested, ns=self.namespace, fire=fire_id, key=overlap_key)
        return await self._run(op, write=False)

    async def release_run(
        self,
        fire_id: str,
        *,
        overlap_key: str | None,
        owner: str,
        now: datetime,
        record: RunRecord | None = None,
    ) -> None:
        # Renewing the lease to end now is the release: the record stays (with its attempt
        # count) and the next begin_run finds the lease over and takes the run over.
        call = self._call(fire_id, overlap_key, owner)
        await self._run(partial(runs.renew_run, call=call, lease_ms=epoch_ms(now), record=record))

    async def finish_run(
        self,
        fire_id: str,
        *,
        overlap_key: str | None,
        owner: str,
        now: datetime,
        remember_for: timedelta = REMEMBER_DONE,
        record: RunRecord | None = None,
    ) -> None:
        call = self._call(fire_id, overlap_key, owner)
        now_ms = epoch_ms(now)
        prune = not self._pruned_at <= now_ms < self._pruned_at + PRUNE_EVERY_MS
        if prune:
            self._pruned_at = now_ms

        def op(conn: sqlite3.Connection) -> None:
            runs.finish_run(
                conn, call, now_ms=now_ms, keep_ms=duration_ms(remember_for), record=record
            )
            if prune:
                runs.prune_runs(conn, call.ns, now_ms)

        await self._run(op)

    async def is_running(self, overlap_key: str, *, now: datetime) -> bool:
        op = partial(runs.is_running, ns=self.namespace, key=overlap_key, now_ms=epoch_ms(now))
        return await self._run(op, write=False)

    # -- the embedded scheduler's take-over -----------------------------------------------

    async def take_over(self, *, now: datetime) -> int:
        """End the leases of in-flight entries (published again at the next tick) and of runs
        (taken over at once, as the next attempt) in this namespace. Only for a process that
        owns the file (the embedded scheduler, under its lock): what holds a lease here
        belonged to a process that is gone. Overlap marks keep their holder, so that the
        fire that was running resumes first and the action's other fires wait or skip as
        while it ran. Returns how many entries were in flight."""
        return await self._run(partial(queue.take_over, ns=self.namespace, now_ms=epoch_ms(now)))
