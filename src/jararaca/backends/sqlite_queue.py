"""The SQLite backend's schedule state, in-flight entries and delayed queue, as operations.

Each function here runs inside one transaction of :mod:`jararaca.backends.sqlite_db` (on
whichever thread runs it) and is the SQL form of the memory backend's method of the same name.
Claims read their rows from an index range (delayed entries by due instant, in-flight entries
by lease end) and move them in bulk (``executemany``).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from datetime import datetime

from jararaca.backends.base import Claimed, ClaimResult, FireClaim
from jararaca.backends.records import RunRecord
from jararaca.backends.sqlite_runs import add_history
from jararaca.clock import epoch_ms, from_epoch_ms
from jararaca.policies import PayloadPolicy, TimePolicy
from jararaca.wire import Envelope

log = logging.getLogger("jararaca.backends.sqlite")

FIRE_CLAIM_TTL_MS = 3_600_000  # the protocol promises to remember a claim for an hour
_UNREADABLE = (ValueError, KeyError, TypeError, AttributeError)
_PUT_INFLIGHT = "INSERT OR REPLACE INTO jararaca_inflight VALUES (?, ?, ?, ?, ?)"
_RAISE_LAST_FIRE = """INSERT INTO jararaca_last_fires VALUES (?, ?, ?)
    ON CONFLICT (ns, action_id) DO UPDATE SET at_ms = excluded.at_ms
    WHERE excluded.at_ms > jararaca_last_fires.at_ms"""


def head_due(conn: sqlite3.Connection, ns: str) -> int | None:
    """The earliest pending due instant (ms), from the (ns, due) index."""
    row = conn.execute(
        "SELECT due_ms FROM jararaca_delayed WHERE ns = ? ORDER BY due_ms LIMIT 1", (ns,)
    ).fetchone()
    return None if row is None else int(row[0])


def insert_delayed(
    conn: sqlite3.Connection, ns: str, task_id: str, due_ms: int, message_id: str, raw: str
) -> None:
    conn.execute(
        "INSERT INTO jararaca_delayed (ns, task_id, due_ms, message_id, envelope) "
        "VALUES (?, ?, ?, ?, ?)",
        (ns, task_id, due_ms, message_id, raw),
    )


def last_fires(conn: sqlite3.Connection, ns: str, ids: Sequence[str]) -> dict[str, datetime]:
    found: dict[str, datetime] = {}
    for first in range(0, len(ids), 500):
        chunk = ids[first : first + 500]
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            "SELECT action_id, at_ms FROM jararaca_last_fires "
            f"WHERE ns = ? AND action_id IN ({marks})",
            (ns, *chunk),
        )
        found.update((action, from_epoch_ms(at)) for action, at in rows)
    return found


def claim_fires(
    conn: sqlite3.Connection,
    ns: str,
    claims: Sequence[FireClaim],
    *,
    now: datetime,
    lease_ms: int,
    history_limit: int,
) -> list[ClaimResult]:
    now_ms = epoch_ms(now)
    # Forgetting expired claims here keeps the table at about one TTL's worth of fires.
    conn.execute("DELETE FROM jararaca_fire_claims WHERE ns = ? AND expires_ms <= ?", (ns, now_ms))
    paused = {
        a for (a,) in conn.execute("SELECT action_id FROM jararaca_paused WHERE ns = ?", (ns,))
    }
    answers = []
    for c in claims:
        taken = conn.execute(
            "SELECT 1 FROM jararaca_fire_claims WHERE ns = ? AND fire_id = ?", (ns, c.fire_id)
        ).fetchone()
        if taken:
            answers.append(ClaimResult.TAKEN)
            continue
        conn.execute(
            "INSERT INTO jararaca_fire_claims VALUES (?, ?, ?)",
            (ns, c.fire_id, now_ms + FIRE_CLAIM_TTL_MS),
        )
        # The last fire only moves forward: a late beat must not make a slot look missed.
        conn.execute(_RAISE_LAST_FIRE, (ns, c.action_id, epoch_ms(c.scheduled_at)))
        if c.action_id in paused:  # recorded skipped, and counted as dispatched
            skipped = RunRecord(c.fire_id, c.action_id, c.scheduled_at, "skipped_paused")
            add_history(conn, ns, skipped.ended("skipped_paused", finished_at=now), history_limit)
            answers.append(ClaimResult.PAUSED)
            continue
        conn.execute(_PUT_INFLIGHT, (ns, c.fire_id, lease_ms, None, c.envelope.to_json()))
        answers.append(ClaimResult.CLAIMED)
    return answers


def forget_inflight(conn: sqlite3.Connection, ns: str, ids: Sequence[str]) -> None:
    conn.executemany(
        "DELETE FROM jararaca_inflight WHERE ns = ? AND inflight_id = ?", [(ns, i) for i in ids]
    )


def reclaim_inflight(
    conn: sqlite3.Connection, ns: str, *, now_ms: int, lease_ms: int, limit: int
) -> list[Claimed]:
    rows = conn.execute(
        "SELECT inflight_id, due_ms, envelope FROM jararaca_inflight "
        "WHERE ns = ? AND lease_ms < ? ORDER BY lease_ms LIMIT ?",
        (ns, now_ms, limit),
    ).fetchall()
    conn.executemany(
        "UPDATE jararaca_inflight SET lease_ms = ? WHERE ns = ? AND inflight_id = ?",
        [(lease_ms, ns, inflight_id) for inflight_id, _, _ in rows],
    )
    claimed = []
    for inflight_id, due_ms, raw in rows:
        try:
            envelope = Envelope.from_json(raw)
        except _UNREADABLE as exc:  # written by hand or by another program: dropped
            log.error("dropped an unreadable in-flight entry (%s): %.200s", exc, raw)
            forget_inflight(conn, ns, [inflight_id])
            continue
        due = None if due_ms is None else from_epoch_ms(due_ms)
        claimed.append(Claimed(inflight_id, envelope, due))
    return claimed


def enqueue_delayed(
    conn: sqlite3.Connection,
    ns: str,
    envelope: Envelope,
    *,
    due_ms: int,
    task_id: str,
    payload_policy: PayloadPolicy,
    time_policy: TimePolicy,
) -> bool:
    """Add or update the entry with the seed's policies; whether the head became sooner."""
    before = head_due(conn, ns)
    current = conn.execute(
        "SELECT due_ms, envelope, message_id FROM jararaca_delayed WHERE ns = ? AND task_id = ?",
        (ns, task_id),
    ).fetchone()
    if current is None:
        insert_delayed(conn, ns, task_id, due_ms, envelope.message_id, envelope.to_json())
        return before is None or due_ms < before
    if payload_policy == "replace":
        raw, message_id = envelope.to_json(), envelope.message_id
    else:
        raw, message_id = current[1], current[2]
    new_due = due_ms
    if (time_policy == "greater" and due_ms <= current[0]) or (
        time_policy == "lesser" and due_ms >= current[0]
    ):
        new_due = current[0]
    conn.execute(
        "UPDATE jararaca_delayed SET due_ms = ?, envelope = ?, message_id = ? "
        "WHERE ns = ? AND task_id = ?",
        (new_due, raw, message_id, ns, task_id),
    )
    return new_due != current[0] and (before is None or new_due < before)


def enqueue_delayed_many(
    conn: sqlite3.Connection, ns: str, entries: Sequence[tuple[Envelope, int]]
) -> bool:
    """Add entries keyed by message id; whether the queue's head became sooner."""
    before = head_due(conn, ns)
    conn.executemany(
        "INSERT OR REPLACE INTO jararaca_delayed (ns, task_id, due_ms, message_id, envelope) "
        "VALUES (?, ?, ?, ?, ?)",
        [(ns, e.message_id, due, e.message_id, e.to_json()) for e, due in entries],
    )
    soonest = min(due for _, due in entries)
    return before is None or soonest < before


def claim_due(
    conn: sqlite3.Connection, ns: str, *, now_ms: int, lease_ms: int, limit: int
) -> list[Claimed]:
    found = conn.execute(
        "SELECT seq, task_id, due_ms, envelope FROM jararaca_delayed "
        "WHERE ns = ? AND due_ms <= ? ORDER BY due_ms, seq LIMIT ?",
        (ns, now_ms, limit),
    ).fetchall()
    conn.executemany("DELETE FROM jararaca_delayed WHERE seq = ?", [(r[0],) for r in found])
    claimed, rows = [], []
    for _, task, due, raw in found:
        try:
            envelope = Envelope.from_json(raw)
        except _UNREADABLE as exc:  # written by hand or by another program: dropped
            log.error("dropped an unreadable delayed entry (%s): %.200s", exc, raw)
            continue
        # In flight they are keyed by task id and message id: retries of one message for
        # several handlers share the message id, a key reused while in flight the task id.
        flight = f"{task}/{envelope.message_id}"
        claimed.append(Claimed(flight, envelope, from_epoch_ms(due)))
        rows.append((ns, flight, lease_ms, due, raw))
    conn.executemany(_PUT_INFLIGHT, rows)
    return claimed


def pending_count(conn: sqlite3.Connection, ns: str) -> int:
    (count,) = conn.execute("SELECT count(*) FROM jararaca_delayed WHERE ns = ?", (ns,)).fetchone()
    return int(count)


def next_due(conn: sqlite3.Connection, ns: str) -> int | None:
    """The earliest pending due instant or in-flight lease end (ms)."""
    lease = conn.execute(
        "SELECT lease_ms FROM jararaca_inflight WHERE ns = ? ORDER BY lease_ms LIMIT 1", (ns,)
    ).fetchone()
    heads = [h for h in (head_due(conn, ns), None if lease is None else lease[0]) if h is not None]
    return min(heads) if heads else None


def take_over(conn: sqlite3.Connection, ns: str, *, now_ms: int) -> int:
    """End the leases of in-flight entries and runs (see ``SqliteBackend.take_over``)."""
    flight = conn.execute("UPDATE jararaca_inflight SET lease_ms = 0 WHERE ns = ?", (ns,)).rowcount
    conn.execute(
        "UPDATE jararaca_runs SET lease_ms = ? "
        "WHERE ns = ? AND done_until_ms IS NULL AND lease_ms > ?",
        (now_ms, ns, now_ms),
    )
    return int(flight)
