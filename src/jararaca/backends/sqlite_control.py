"""The SQLite backend's control side: run history, paused actions, heartbeats, dynamic
schedules, and looking into and steering the delayed queue. Mixed into
:class:`~jararaca.backends.sqlite.SqliteBackend` (which provides the namespace and the
transaction runner); none of it is on a hot path. Reads use deferred transactions, which in
WAL mode never wait for the process writing (the control CLI reads a running scheduler's
file this way); writes wait for the file's write lock like any other state change.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from jararaca.backends.base import DelayedEntry, FireClaim
from jararaca.backends.records import ProcessRecord, RunRecord, ScheduleRecord
from jararaca.backends.sqlite_queue import insert_delayed
from jararaca.backends.sqlite_runs import add_history
from jararaca.clock import epoch_ms, from_epoch_ms
from jararaca.wire import Envelope

T = TypeVar("T")
SCHEDULES_VERSION = "schedules_version"


class SqliteControl:
    """RunHistory, Pauses, Processes, DelayedAdmin and Schedules on the backend's file."""

    namespace: str
    history_limit: int

    async def _run(self, op: Callable[[sqlite3.Connection], T], *, write: bool = True) -> T:
        raise NotImplementedError  # the backend provides its transaction runner

    def _wake(self) -> None:
        raise NotImplementedError

    # -- run history ----------------------------------------------------------------------

    async def record_runs(self, records: Sequence[RunRecord]) -> None:
        ns, limit, found = self.namespace, self.history_limit, list(records)

        def op(conn: sqlite3.Connection) -> None:
            for record in found:
                add_history(conn, ns, record, limit)

        if found:
            await self._run(op)

    async def run_history(self, action_id: str, *, limit: int) -> list[RunRecord]:
        if limit <= 0:
            return []
        rows = await self._read(
            "SELECT record FROM jararaca_history WHERE ns = ? AND action_id = ? "
            "ORDER BY scheduled_ms DESC, fire_id DESC LIMIT ?",
            (self.namespace, action_id, limit),
        )
        return [RunRecord.from_json(raw) for (raw,) in rows]

    async def _read(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return await self._run(lambda conn: conn.execute(sql, args).fetchall(), write=False)

    async def _write(self, sql: str, args: tuple[Any, ...]) -> int:
        return await self._run(lambda conn: conn.execute(sql, args).rowcount)

    # -- pauses ---------------------------------------------------------------------------

    async def pause(self, action_id: str, reason: str) -> None:
        await self._write(
            "INSERT OR REPLACE INTO jararaca_paused VALUES (?, ?, ?)",
            (self.namespace, action_id, reason),
        )

    async def resume(self, action_id: str) -> bool:
        removed = await self._write(
            "DELETE FROM jararaca_paused WHERE ns = ? AND action_id = ?",
            (self.namespace, action_id),
        )
        return removed > 0

    async def paused(self) -> dict[str, str]:
        rows = await self._read(
            "SELECT action_id, reason FROM jararaca_paused WHERE ns = ?", (self.namespace,)
        )
        return {str(action): str(reason) for action, reason in rows}

    # -- processes ------------------------------------------------------------------------

    async def heartbeat(self, record: ProcessRecord, *, keep: timedelta) -> None:
        # The record expires on its own: a process killed with SIGKILL vanishes after `keep`.
        expires = epoch_ms(record.last_seen + keep)
        await self._write(
            "INSERT OR REPLACE INTO jararaca_processes VALUES (?, ?, ?, ?)",
            (self.namespace, record.process_id, expires, record.to_json()),
        )

    async def processes(self) -> list[ProcessRecord]:
        # Measured against the wall clock, as Redis measures the TTL of its heartbeat keys.
        now_ms = round(time.time() * 1000)
        rows = await self._read(
            "SELECT record FROM jararaca_processes WHERE ns = ? AND expires_ms > ? "
            "ORDER BY process_id",
            (self.namespace, now_ms),
        )
        return [ProcessRecord.from_json(raw) for (raw,) in rows]

    async def forget_process(self, process_id: str) -> None:
        await self._write(
            "DELETE FROM jararaca_processes WHERE ns = ? AND (process_id = ? OR expires_ms <= ?)",
            (self.namespace, process_id, round(time.time() * 1000)),
        )

    # -- the delayed queue, for operators -------------------------------------------------

    async def list_delayed(self, *, limit: int) -> list[DelayedEntry]:
        if limit <= 0:
            return []
        rows = await self._read(
            "SELECT task_id, due_ms, envelope FROM jararaca_delayed WHERE ns = ? "
            "ORDER BY due_ms, seq LIMIT ?",
            (self.namespace, limit),
        )
        entries = []
        for task, due, raw in rows:
            try:
                entries.append(DelayedEntry(task, Envelope.from_json(raw), from_epoch_ms(due)))
            except (ValueError, KeyError, TypeError):
                continue  # unreadable: claim_due drops it with a log line
        return entries

    async def cancel_delayed(
        self, *, task_id: str | None = None, message_id: str | None = None
    ) -> bool:
        if task_id is not None:
            where, key = "task_id = ?", task_id
        elif message_id is not None:
            where, key = "message_id = ?", message_id
        else:
            return False
        ns = self.namespace

        def op(conn: sqlite3.Connection) -> bool:
            # One entry: the soonest with that id (a message id is looked for in the whole
            # queue of the namespace: operators only, as Redis scans its hash).
            row = conn.execute(
                f"SELECT seq FROM jararaca_delayed WHERE ns = ? AND {where} "
                "ORDER BY due_ms LIMIT 1",
                (ns, key),
            ).fetchone()
            if row is None:
                return False
            conn.execute("DELETE FROM jararaca_delayed WHERE seq = ?", (row[0],))
            return True

        return await self._run(op)

    async def enqueue_fires(self, claims: Sequence[FireClaim], *, due: datetime) -> list[str]:
        if not claims:
            return []
        ns, now_ms = self.namespace, epoch_ms(due)

        def op(conn: sqlite3.Connection) -> list[str]:
            queued = []
            for claim in claims:
                fire = claim.fire_id
                if _known(conn, ns, claim.action_id, fire, now_ms):
                    continue
                raw = claim.envelope.to_json()
                insert_delayed(conn, ns, fire, now_ms, claim.envelope.message_id, raw)
                queued.append(fire)
            return queued

        queued = await self._run(op)
        if queued:
            self._wake()
        return queued

    # -- dynamic schedules ----------------------------------------------------------------

    async def put_schedule(self, schedule: ScheduleRecord) -> None:
        ns = self.namespace

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO jararaca_schedules VALUES (?, ?, ?)",
                (ns, schedule.schedule_id, schedule.to_json()),
            )
            _bump(conn, ns, SCHEDULES_VERSION)

        await self._run(op)

    async def delete_schedule(self, schedule_id: str) -> bool:
        ns = self.namespace

        def op(conn: sqlite3.Connection) -> bool:
            removed = conn.execute(
                "DELETE FROM jararaca_schedules WHERE ns = ? AND schedule_id = ?",
                (ns, schedule_id),
            ).rowcount
            if removed:
                _bump(conn, ns, SCHEDULES_VERSION)
            return removed > 0

        return await self._run(op)

    async def dynamic_schedules(self) -> list[ScheduleRecord]:
        rows = await self._read(
            "SELECT record FROM jararaca_schedules WHERE ns = ? ORDER BY schedule_id",
            (self.namespace,),
        )
        return [ScheduleRecord.from_json(raw) for (raw,) in rows]

    async def schedules_version(self) -> int:
        rows = await self._read(
            "SELECT value FROM jararaca_counters WHERE ns = ? AND name = ?",
            (self.namespace, SCHEDULES_VERSION),
        )
        return int(rows[0][0]) if rows else 0


def _known(conn: sqlite3.Connection, ns: str, action_id: str, fire: str, now_ms: int) -> bool:
    """Whether a fire was claimed within the claim TTL, has a live or remembered run record,
    is in its action's history, or waits in the delayed queue already."""
    claimed = conn.execute(
        "SELECT 1 FROM jararaca_fire_claims WHERE ns = ? AND fire_id = ? AND expires_ms > ?",
        (ns, fire, now_ms),
    ).fetchone()
    run = conn.execute(
        "SELECT coalesce(done_until_ms, lease_ms) FROM jararaca_runs WHERE ns = ? AND run_id = ?",
        (ns, fire),
    ).fetchone()
    history = conn.execute(
        "SELECT 1 FROM jararaca_history WHERE ns = ? AND action_id = ? AND fire_id = ?",
        (ns, action_id, fire),
    ).fetchone()
    pending = conn.execute(
        "SELECT 1 FROM jararaca_delayed WHERE ns = ? AND task_id = ?", (ns, fire)
    ).fetchone()
    return bool(claimed or (run and run[0] > now_ms) or history or pending)


def _bump(conn: sqlite3.Connection, ns: str, name: str) -> None:
    conn.execute(
        "INSERT INTO jararaca_counters VALUES (?, ?, 1) "
        "ON CONFLICT (ns, name) DO UPDATE SET value = value + 1",
        (ns, name),
    )
