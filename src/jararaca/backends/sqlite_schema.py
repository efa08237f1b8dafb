"""The SQLite backend's tables, their versions and how a file is brought up to date.

``jararaca_schema_version`` holds one number. :data:`MIGRATIONS` maps each version to the
statements that build it from the one before, so a file written by any earlier jararaca is
migrated in one transaction when it is opened; a file of a *newer* version is refused without
being touched. Every table is prefixed ``jararaca_`` (the file may be an application's own
database) and keyed by namespace first, so several apps share a file without seeing each
other. Every lookup on a hot path is an index seek: delayed entries by (namespace, due),
in-flight entries by (namespace, lease end), fire claims and run records by (namespace,
expiry), the run history by (namespace, action, scheduled instant). Cancelling a delayed
message by its message id (operators only) reads the namespace's queue, as Redis scans.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from jararaca.backends.sqlite_files import read_only_error
from jararaca.errors import ConfigError

SCHEMA_VERSION = 1

_V1 = (
    "CREATE TABLE jararaca_schema_version (version INTEGER NOT NULL)",
    # -- schedule state
    """CREATE TABLE jararaca_last_fires (
        ns TEXT NOT NULL, action_id TEXT NOT NULL, at_ms INTEGER NOT NULL,
        PRIMARY KEY (ns, action_id)) WITHOUT ROWID""",
    """CREATE TABLE jararaca_fire_claims (
        ns TEXT NOT NULL, fire_id TEXT NOT NULL, expires_ms INTEGER NOT NULL,
        PRIMARY KEY (ns, fire_id)) WITHOUT ROWID""",
    "CREATE INDEX jararaca_fire_claims_expiry ON jararaca_fire_claims (ns, expires_ms)",
    # -- claimed envelopes not yet confirmed (due_ms is NULL for cron fires)
    """CREATE TABLE jararaca_inflight (
        ns TEXT NOT NULL, inflight_id TEXT NOT NULL, lease_ms INTEGER NOT NULL,
        due_ms INTEGER, envelope TEXT NOT NULL,
        PRIMARY KEY (ns, inflight_id)) WITHOUT ROWID""",
    "CREATE INDEX jararaca_inflight_lease ON jararaca_inflight (ns, lease_ms)",
    # -- the delayed queue; seq (the rowid) orders entries due at the same instant
    """CREATE TABLE jararaca_delayed (
        seq INTEGER PRIMARY KEY, ns TEXT NOT NULL, task_id TEXT NOT NULL,
        due_ms INTEGER NOT NULL, message_id TEXT NOT NULL, envelope TEXT NOT NULL,
        UNIQUE (ns, task_id))""",
    "CREATE INDEX jararaca_delayed_due ON jararaca_delayed (ns, due_ms)",
    # -- run records (expires_ms: when the record may be forgotten) and overlap marks
    """CREATE TABLE jararaca_runs (
        ns TEXT NOT NULL, run_id TEXT NOT NULL, owner TEXT NOT NULL,
        lease_ms INTEGER NOT NULL, attempt INTEGER NOT NULL, done_until_ms INTEGER,
        expires_ms INTEGER NOT NULL,
        PRIMARY KEY (ns, run_id)) WITHOUT ROWID""",
    "CREATE INDEX jararaca_runs_expiry ON jararaca_runs (ns, expires_ms)",
    """CREATE TABLE jararaca_overlap (
        ns TEXT NOT NULL, overlap_key TEXT NOT NULL, mark TEXT NOT NULL,
        PRIMARY KEY (ns, overlap_key)) WITHOUT ROWID""",
    # -- control: run history, pauses, heartbeats, dynamic schedules, counters
    """CREATE TABLE jararaca_history (
        ns TEXT NOT NULL, action_id TEXT NOT NULL, fire_id TEXT NOT NULL,
        scheduled_ms INTEGER NOT NULL, record TEXT NOT NULL,
        PRIMARY KEY (ns, action_id, fire_id)) WITHOUT ROWID""",
    """CREATE INDEX jararaca_history_order
        ON jararaca_history (ns, action_id, scheduled_ms, fire_id)""",
    """CREATE TABLE jararaca_paused (
        ns TEXT NOT NULL, action_id TEXT NOT NULL, reason TEXT NOT NULL,
        PRIMARY KEY (ns, action_id)) WITHOUT ROWID""",
    """CREATE TABLE jararaca_processes (
        ns TEXT NOT NULL, process_id TEXT NOT NULL, expires_ms INTEGER NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (ns, process_id)) WITHOUT ROWID""",
    """CREATE TABLE jararaca_schedules (
        ns TEXT NOT NULL, schedule_id TEXT NOT NULL, record TEXT NOT NULL,
        PRIMARY KEY (ns, schedule_id)) WITHOUT ROWID""",
    """CREATE TABLE jararaca_counters (
        ns TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL,
        PRIMARY KEY (ns, name)) WITHOUT ROWID""",
)

# version -> the statements that build it from the version before (1 from an empty file).
MIGRATIONS: dict[int, tuple[str, ...]] = {1: _V1}

# Every table holding a namespace's state (delete_namespace empties them).
STATE_TABLES = (
    "jararaca_last_fires",
    "jararaca_fire_claims",
    "jararaca_inflight",
    "jararaca_delayed",
    "jararaca_runs",
    "jararaca_overlap",
    "jararaca_history",
    "jararaca_paused",
    "jararaca_processes",
    "jararaca_schedules",
    "jararaca_counters",
)


def prepare(conn: sqlite3.Connection, file: Path, synchronous: str, busy_ms: int) -> None:
    """Check the file, switch it to WAL and migrate it (on the connection's thread). A file
    that is not a SQLite database, or of a newer schema, is refused before anything is
    written to it."""
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise ConfigError(
            f"{file} is not a SQLite database jararaca can open ({exc}); it was left exactly "
            "as it is. Point --backend-url at another file (a missing one is created), or "
            "move this one away if it is not needed; restore a backup if it was ours."
        ) from None
    conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
    version = _version(conn)
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"the SQLite file {file} was written by a newer jararaca (schema version "
            f"{version}; this one knows versions up to {SCHEMA_VERSION}) and is left as it "
            "is: upgrade jararaca, or use another file."
        )
    try:
        mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        if mode != "wal":
            mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
        if mode != "wal":
            raise ConfigError(
                f"the SQLite file {file} cannot use write-ahead logging (journal mode "
                f"{mode!r}): put it on a local disk"
            )
        conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        if version < SCHEMA_VERSION:
            _migrate(conn)
    except sqlite3.OperationalError as exc:
        if "readonly" in str(exc) or "read-only" in str(exc):
            raise read_only_error(file, exc) from None
        raise


def _version(conn: sqlite3.Connection) -> int:
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jararaca_schema_version'"
    ).fetchone()
    if found is None:
        return 0
    row = conn.execute("SELECT max(version) FROM jararaca_schema_version").fetchone()
    return int(row[0] or 0)


def _migrate(conn: sqlite3.Connection) -> None:
    """From the file's version to :data:`SCHEMA_VERSION`, in one transaction (another
    process opening the file at the same time waits, then finds it up to date)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _version(conn)
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[target]:
                conn.execute(statement)
        if version < SCHEMA_VERSION:
            conn.execute("DELETE FROM jararaca_schema_version")
            conn.execute("INSERT INTO jararaca_schema_version VALUES (?)", (SCHEMA_VERSION,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
