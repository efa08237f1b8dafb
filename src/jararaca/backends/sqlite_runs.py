"""The SQLite backend's run records, overlap marks and run history, as operations.

Each function here runs on the connection's thread inside one transaction (see
:mod:`jararaca.backends.sqlite_db`) and is the SQL form of the memory backend's method of the
same name: run records in ``jararaca_runs``, an action's overlap mark (holder, cancel request,
waiting fires) as one JSON row of ``jararaca_overlap``, read and written whole, so every rule
of :meth:`~jararaca.backends.base.RunLeases.begin_run` is the same code path as in memory.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace

from jararaca.backends.base import OnOverlap, RunStart, RunStatus
from jararaca.backends.overlap import Mark, overlap_decision
from jararaca.backends.records import RunRecord
from jararaca.clock import epoch_ms, from_epoch_ms

PRUNE_BATCH = 1_000  # run records forgotten per finish_run, at most


def add_history(conn: sqlite3.Connection, ns: str, record: RunRecord, limit: int) -> None:
    """Add or replace a run record; keep the newest ``limit`` of its action (by scheduled
    instant, then fire id, as the Redis sorted set orders them)."""
    conn.execute(
        "INSERT OR REPLACE INTO jararaca_history VALUES (?, ?, ?, ?, ?)",
        (ns, record.action_id, record.fire_id, epoch_ms(record.scheduled_at), record.to_json()),
    )
    (count,) = conn.execute(
        "SELECT count(*) FROM jararaca_history WHERE ns = ? AND action_id = ?",
        (ns, record.action_id),
    ).fetchone()
    if count > limit:
        conn.execute(
            """DELETE FROM jararaca_history WHERE ns = ? AND action_id = ? AND fire_id IN (
                 SELECT fire_id FROM jararaca_history WHERE ns = ? AND action_id = ?
                 ORDER BY scheduled_ms, fire_id LIMIT ?)""",
            (ns, record.action_id, ns, record.action_id, count - limit),
        )


def load_mark(conn: sqlite3.Connection, ns: str, key: str) -> Mark | None:
    row = conn.execute(
        "SELECT mark FROM jararaca_overlap WHERE ns = ? AND overlap_key = ?", (ns, key)
    ).fetchone()
    return None if row is None else Mark.from_json(row[0])


def save_mark(conn: sqlite3.Connection, ns: str, key: str, mark: Mark) -> None:
    if mark.empty():
        conn.execute("DELETE FROM jararaca_overlap WHERE ns = ? AND overlap_key = ?", (ns, key))
    else:
        conn.execute(
            "INSERT OR REPLACE INTO jararaca_overlap VALUES (?, ?, ?)", (ns, key, mark.to_json())
        )


@dataclass(frozen=True, slots=True)
class RunCall:
    """What every run operation is given: the namespace, the run and its overlap mark."""

    ns: str
    fire: str
    overlap_key: str | None
    owner: str
    history_limit: int


def _run_row(conn: sqlite3.Connection, call: RunCall) -> tuple[str, int, int, int | None] | None:
    row = conn.execute(
        "SELECT owner, lease_ms, attempt, done_until_ms FROM jararaca_runs "
        "WHERE ns = ? AND run_id = ?",
        (call.ns, call.fire),
    ).fetchone()
    return None if row is None else (row[0], row[1], row[2], row[3])


def _put_run(
    conn: sqlite3.Connection,
    call: RunCall,
    lease_ms: int,
    attempt: int,
    done_until_ms: int | None,
    expires_ms: int,
    *,
    exists: bool,
) -> None:
    if exists:  # in place: cheaper than REPLACE's delete and insert
        conn.execute(
            "UPDATE jararaca_runs SET owner = ?, lease_ms = ?, attempt = ?, done_until_ms = ?, "
            "expires_ms = ? WHERE ns = ? AND run_id = ?",
            (call.owner, lease_ms, attempt, done_until_ms, expires_ms, call.ns, call.fire),
        )
    else:
        conn.execute(
            "INSERT INTO jararaca_runs VALUES (?, ?, ?, ?, ?, ?, ?)",
            (call.ns, call.fire, call.owner, lease_ms, attempt, done_until_ms, expires_ms),
        )


def begin_run(
    conn: sqlite3.Connection,
    call: RunCall,
    *,
    now_ms: int,
    lease_ms: int,
    keep_ms: int,
    on_overlap: OnOverlap,
    record: RunRecord | None,
    ahead: bool = False,
) -> RunStart:
    if call.overlap_key is None and record is None:
        # The common case (a message): a run never seen starts at once, in one statement.
        expires = max(lease_ms, now_ms) + keep_ms
        if conn.execute(_START_NEW, (call.ns, call.fire, call.owner, lease_ms, expires)).rowcount:
            return RunStart(RunStatus.STARTED, 1)
    run = _run_row(conn, call)
    exists = run is not None
    if run is not None and run[3] is not None:
        if run[3] > now_ms:
            return RunStart(RunStatus.DONE, attempt=run[2])
        run = None  # finished longer ago than it is remembered: a new fire
    if run is not None and run[1] > now_ms:  # live, whoever holds it
        return RunStart(RunStatus.BUSY, run[2], from_epoch_ms(run[1]))
    if call.overlap_key is not None:
        mark = load_mark(conn, call.ns, call.overlap_key) or Mark()
        order = epoch_ms(record.scheduled_at) if record is not None else now_ms
        blocked = overlap_decision(
            mark, call.fire, order, on_overlap, now_ms, lease_ms, ahead=ahead
        )
        if blocked is not None:
            status, until_ms = blocked
            if status is RunStatus.OVERLAP:  # skipped: recorded done, a redelivery is DONE
                keep = now_ms + keep_ms
                _put_run(conn, call, now_ms, 1, keep, keep, exists=exists)
                if record is not None:
                    skipped = record.ended("skipped_overlap", finished_at=from_epoch_ms(now_ms))
                    add_history(conn, call.ns, skipped, call.history_limit)
            save_mark(conn, call.ns, call.overlap_key, mark)
            busy_until = None if until_ms is None else from_epoch_ms(until_ms)
            return RunStart(status, 1, busy_until)
        if mark.fire != call.fire:  # a new holder: a request to stop was for the previous one
            mark.cancel, mark.cancel_at_ms, mark.cancel_until_ms = None, 0, 0
        mark.fire, mark.owner, mark.lease_ms, mark.at_ms = call.fire, call.owner, lease_ms, order
        mark.waiting.pop(call.fire, None)
        save_mark(conn, call.ns, call.overlap_key, mark)
    attempt = 1 if run is None else run[2] + 1
    # Kept past the lease so that a take-over after a dead worker still counts attempts.
    _put_run(conn, call, lease_ms, attempt, None, max(lease_ms, now_ms) + keep_ms, exists=exists)
    if record is not None:
        add_history(conn, call.ns, replace(record, attempt=attempt), call.history_limit)
    return RunStart(RunStatus.STARTED, attempt)


def renew_run(
    conn: sqlite3.Connection, call: RunCall, *, lease_ms: int, record: RunRecord | None = None
) -> bool:
    """Extend the owner's lease (a release is a renewal to end now, with its record)."""
    run = _run_row(conn, call)
    if run is None or run[0] != call.owner or run[3] is not None:
        return False
    mark = None if call.overlap_key is None else load_mark(conn, call.ns, call.overlap_key)
    if call.overlap_key is not None and (mark is None or mark.fire != call.fire):
        return False  # another fire took the mark: see the memory backend's renew_run
    conn.execute(
        # The record is kept as long past its lease as before (the lease moved, so does it).
        "UPDATE jararaca_runs SET lease_ms = ?, expires_ms = expires_ms + ? "
        "WHERE ns = ? AND run_id = ?",
        (lease_ms, max(0, lease_ms - run[1]), call.ns, call.fire),
    )
    if call.overlap_key is not None and mark is not None and mark.owner == call.owner:
        mark.lease_ms = lease_ms
        save_mark(conn, call.ns, call.overlap_key, mark)
    if record is not None:
        add_history(conn, call.ns, record, call.history_limit)
    return True


def finish_run(
    conn: sqlite3.Connection,
    call: RunCall,
    *,
    now_ms: int,
    keep_ms: int,
    record: RunRecord | None,
) -> None:
    keep = now_ms + keep_ms
    if call.overlap_key is None and record is None:
        # The common case: the owner's own run (or one that is over) is marked done at once.
        args = (call.owner, now_ms, keep, keep, call.ns, call.fire, call.owner, now_ms)
        if conn.execute(_FINISH_OWN, args).rowcount:
            return
    run = _run_row(conn, call)
    # A slow (not dead) owner finishing after another worker took the run over must not mark
    # the new owner's live run done: that would stop its renewals.
    taken_over = run is not None and run[0] != call.owner and run[3] is None and run[1] > now_ms
    if not taken_over:
        attempt = run[2] if run is not None else 1
        _put_run(conn, call, now_ms, attempt, keep, keep, exists=run is not None)
        if record is not None:
            add_history(conn, call.ns, record, call.history_limit)
    if call.overlap_key is not None:
        mark = load_mark(conn, call.ns, call.overlap_key)
        if mark is not None and mark.fire == call.fire and mark.owner == call.owner:
            # Waiting fires (and a cancel request, whose fire waits) stay.
            mark.fire, mark.owner, mark.lease_ms, mark.at_ms = None, "", 0, 0
            save_mark(conn, call.ns, call.overlap_key, mark)


_START_NEW = """INSERT INTO jararaca_runs VALUES (?, ?, ?, ?, 1, NULL, ?)
    ON CONFLICT (ns, run_id) DO NOTHING"""
# Done by its owner, or by anyone once not held by a live lease (finish_run's rule).
_FINISH_OWN = """UPDATE jararaca_runs SET owner = ?, lease_ms = ?, done_until_ms = ?, expires_ms = ?
    WHERE ns = ? AND run_id = ? AND (owner = ? OR done_until_ms IS NOT NULL OR lease_ms <= ?)"""


def cancel_requested(conn: sqlite3.Connection, ns: str, fire: str, key: str) -> bool:
    mark = load_mark(conn, ns, key)
    return mark is not None and mark.fire == fire and mark.cancel is not None


def is_running(conn: sqlite3.Connection, ns: str, key: str, now_ms: int) -> bool:
    mark = load_mark(conn, ns, key)
    return mark is not None and mark.fire is not None and mark.lease_ms > now_ms


def prune_runs(conn: sqlite3.Connection, ns: str, now_ms: int) -> None:
    """Forget run records past their expiry (a bounded batch: an index range, no scan)."""
    conn.execute(
        """DELETE FROM jararaca_runs WHERE ns = ? AND run_id IN (
             SELECT run_id FROM jararaca_runs WHERE ns = ? AND expires_ms <= ? LIMIT ?)""",
        (ns, ns, now_ms, PRUNE_BATCH),
    )
