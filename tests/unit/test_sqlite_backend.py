"""The SQLite backend beyond the shared contract: URLs, bad files (missing folder, read-only,
newer schema, not a database, network file system), migrations, index use, a busy file, group
commit, the scheduler lock, and the embedded scheduler's durable hand-off."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jararaca import Message, MessageHandler, Microservice, Scheduler, connect
from jararaca.backends import sqlite_files
from jararaca.backends.base import Claimed
from jararaca.backends.sqlite import SqliteBackend
from jararaca.backends.sqlite_db import Database
from jararaca.backends.sqlite_embedded import HandOff
from jararaca.backends.sqlite_files import SchedulerLock, check_path, mount_type, warn_if_network
from jararaca.backends.sqlite_schema import MIGRATIONS, SCHEMA_VERSION
from jararaca.brokers.memory import MemoryBroker, reset_memory_brokers
from jararaca.engines import Engines, embedded_engines, make_backend, warn_if_volatile
from jararaca.errors import BackendError, ConfigError
from jararaca.urls import parse_sqlite_url
from jararaca.wire import Envelope

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "jararaca.db"


def write(path: Path, data: bytes, mode: int | None = None) -> None:
    path.write_bytes(data)
    if mode is not None:
        path.chmod(mode)


def read(path: Path) -> bytes:
    return path.read_bytes()


async def opened(path: Path, namespace: str = "ns") -> SqliteBackend:
    backend = SqliteBackend(url_of(path), namespace=namespace)
    await backend.connect()
    return backend


# -- URLs ---------------------------------------------------------------------------------------


def test_urls_name_a_relative_or_an_absolute_file() -> None:
    assert parse_sqlite_url("sqlite:///jararaca.db").path == "jararaca.db"
    assert parse_sqlite_url("sqlite:///data/j.db").path == "data/j.db"
    assert parse_sqlite_url("sqlite:////var/lib/j.db").path == "/var/lib/j.db"
    assert parse_sqlite_url("sqlite:///my%20file.db").path == "my file.db"
    assert parse_sqlite_url("sqlite:///j.db").synchronous == "normal"
    assert parse_sqlite_url("sqlite:///j.db?synchronous=FULL").synchronous == "full"
    assert isinstance(make_backend("sqlite:///j.db", namespace="n"), SqliteBackend)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("sqlite://host/j.db", "no host"),
        ("sqlite://", "name a file"),
        ("sqlite:///", "name a file"),
        ("sqlite:///:memory:", "memory://"),
        ("sqlite:///j.db?sync=full", "unknown option 'sync'"),
        ("sqlite:///j.db?synchronous=off", "synchronous='off'"),
    ],
)
def test_bad_urls_are_refused_saying_why(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_sqlite_url(url)


def test_a_python_without_sqlite3_is_told_what_to_do() -> None:
    code = (
        "import sys; sys.modules['sqlite3'] = None\n"
        "from jararaca.engines import make_backend\n"
        "from jararaca.errors import ConfigError\n"
        "try:\n    make_backend('sqlite:///x.db', namespace='n')\n"
        "except ConfigError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "needs Python's sqlite3 module" in out.stdout


# -- bad files ----------------------------------------------------------------------------------


async def test_a_missing_folder_is_named_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "j.db"
    with pytest.raises(ConfigError) as error:
        await opened(path)
    assert f"its folder {path.parent} does not exist" in str(error.value)
    assert f"mkdir -p {path.parent}" in str(error.value)
    assert not path.parent.exists()


class _PatchedOs:
    """``os`` as sqlite_files sees it, with ``access`` replaced."""

    def __init__(self, access: object) -> None:
        self.access = access

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)


@pytest.fixture
def unwritable(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[Path]]:
    """Paths made read-only (chmod; for root, who may write anything, os.access is told)."""
    paths: set[Path] = set()
    real_access = os.access

    def access(path: object, mode: int) -> bool:
        if Path(str(path)) in paths and mode & os.W_OK:
            return False
        return real_access(path, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite_files, "os", _PatchedOs(access))
    yield paths
    for path in paths:
        path.chmod(0o755)


async def test_a_read_only_file_is_refused(db: Path, unwritable: set[Path]) -> None:
    write(db, b"", 0o444)
    unwritable.add(db)
    with pytest.raises(ConfigError, match=f"cannot write the SQLite file {db}: it is read-only"):
        await opened(db)


async def test_a_read_only_folder_is_refused(db: Path, unwritable: set[Path]) -> None:
    db.parent.chmod(0o555)
    unwritable.add(db.parent)
    with pytest.raises(ConfigError, match=f"cannot write in the folder {db.parent}"):
        check_path(str(db))


async def test_a_folder_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a regular file"):
        await opened(tmp_path)


async def test_a_file_that_is_not_a_database_is_refused_and_left_alone(db: Path) -> None:
    garbage = b"this is not SQLite, it is somebody's notes\n" * 200
    write(db, garbage)
    with pytest.raises(ConfigError, match=f"{db} is not a SQLite database") as error:
        await opened(db)
    assert "left exactly as it is" in str(error.value)
    assert read(db) == garbage
    assert not db.with_name(db.name + "-wal").exists()


async def test_a_newer_schema_is_refused_naming_both_versions(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE jararaca_schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO jararaca_schema_version VALUES (?)", (SCHEMA_VERSION + 6,))
    conn.commit()
    conn.close()
    before = read(db)
    with pytest.raises(ConfigError) as error:
        await opened(db)
    message = str(error.value)
    assert f"schema version {SCHEMA_VERSION + 6}" in message
    assert f"knows versions up to {SCHEMA_VERSION}" in message
    assert read(db) == before


async def test_an_empty_file_and_another_apps_database_are_used(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")  # the application's own
    conn.commit()
    conn.close()
    backend = await opened(db)
    await backend.pause("a", "why")
    await backend.close()
    tables = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master")}
    assert "orders" in tables
    assert "jararaca_paused" in tables


def test_network_file_systems_are_found_and_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    share = tmp_path / "my share"
    share.mkdir()
    escaped = str(share).replace(" ", "\\040")
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/vda / ext4 rw 0 0\n"
        f"server:/export {escaped} nfs4 rw,relatime 0 0\n"
        f"/dev/vdb {tmp_path}/local ext4 rw 0 0\n"
    )
    assert mount_type(share / "j.db", mounts) == "nfs4"
    assert mount_type(tmp_path / "local" / "j.db", mounts) == "ext4"
    assert mount_type(tmp_path / "other.db", mounts) == "ext4"  # "/": the longest prefix
    with caplog.at_level(logging.WARNING):
        assert warn_if_network(share / "j.db", mounts) == "nfs4"
        assert warn_if_network(tmp_path / "j.db", mounts) is None
    [warning] = caplog.records
    assert "network file system (nfs4)" in warning.getMessage()
    assert str(share / "j.db") in warning.getMessage()


# -- schema -------------------------------------------------------------------------------------


def test_migrations_go_from_version_1_to_the_current_one() -> None:
    assert sorted(MIGRATIONS) == list(range(1, SCHEMA_VERSION + 1))


async def test_a_new_file_is_at_the_current_version_and_keeps_its_state(db: Path) -> None:
    backend = await opened(db)
    await backend.enqueue_delayed(Envelope("m", "t", b"{}", {}), T0, task_id="m")
    await backend.close()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT version FROM jararaca_schema_version").fetchall() == [(1,)]
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()
    again = await opened(db)
    assert await again.pending_count() == 1
    await again.close()


HOT_QUERIES = [
    "SELECT seq FROM jararaca_delayed WHERE ns = 'n' AND due_ms <= 5 ORDER BY due_ms, seq LIMIT 9",
    "SELECT due_ms FROM jararaca_delayed WHERE ns = 'n' ORDER BY due_ms LIMIT 1",
    "SELECT inflight_id FROM jararaca_inflight WHERE ns = 'n' AND lease_ms < 5 "
    "ORDER BY lease_ms LIMIT 9",
    "SELECT lease_ms FROM jararaca_inflight WHERE ns = 'n' ORDER BY lease_ms LIMIT 1",
    "DELETE FROM jararaca_fire_claims WHERE ns = 'n' AND expires_ms <= 5",
    "SELECT run_id FROM jararaca_runs WHERE ns = 'n' AND expires_ms <= 5 LIMIT 9",
    "SELECT owner FROM jararaca_runs WHERE ns = 'n' AND run_id = 'r'",
    "SELECT record FROM jararaca_history WHERE ns = 'n' AND action_id = 'a' "
    "ORDER BY scheduled_ms DESC, fire_id DESC LIMIT 9",
    "SELECT 1 FROM jararaca_delayed WHERE ns = 'n' AND task_id = 't'",
]


@pytest.mark.parametrize("query", HOT_QUERIES)
async def test_claiming_due_work_never_scans_a_table(db: Path, query: str) -> None:
    await (await opened(db)).close()
    conn = sqlite3.connect(db)
    plan = " | ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {query}"))
    conn.close()
    assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan


# -- concurrency --------------------------------------------------------------------------------


def hold_write_lock(path: Path, seconds: float, held: threading.Event) -> threading.Thread:
    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        threading.Event().wait(seconds)
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    return thread


async def test_a_busy_file_is_waited_for_and_read_meanwhile(db: Path) -> None:
    backend = await opened(db)
    await backend.pause("a", "before")
    held = threading.Event()
    holder = hold_write_lock(db, 1.0, held)
    await asyncio.to_thread(held.wait)
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert await backend.paused() == {"a": "before"}  # WAL: readers never wait
    assert loop.time() - began < 0.5
    await backend.pause("b", "while busy")  # waits for the lock, then succeeds
    assert loop.time() - began >= 0.5
    await asyncio.to_thread(holder.join)
    assert await backend.paused() == {"a": "before", "b": "while busy"}
    await backend.close()


async def test_a_file_busy_for_too_long_is_an_error_naming_it(db: Path) -> None:
    backend = await opened(db)
    backend._db.busy_retry_seconds = 0.3
    held = threading.Event()
    holder = hold_write_lock(db, 3.0, held)
    await asyncio.to_thread(held.wait)
    with pytest.raises(BackendError, match=f"{db} stayed busy"):
        await backend.pause("a", "")
    await asyncio.to_thread(holder.join)
    await backend.close()


async def test_an_op_that_fails_fails_alone_in_its_group(db: Path) -> None:
    database = Database(db)
    await database.open(lambda conn: None)
    await database.run(lambda conn: conn.execute("CREATE TABLE t (v INTEGER)"))

    def insert(value: int) -> Callable[[sqlite3.Connection], int]:
        return lambda conn: conn.execute("INSERT INTO t VALUES (?)", (value,)).rowcount

    def fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (99)")
        raise ValueError("this op is wrong")

    one, failed, two = await asyncio.gather(
        database.run(insert(1)), database.run(fail), database.run(insert(2)), return_exceptions=True
    )
    assert (one, two) == (1, 1)
    assert isinstance(failed, BackendError)
    assert "this op is wrong" in str(failed)
    rows = await database.run(lambda conn: conn.execute("SELECT v FROM t").fetchall(), write=False)
    assert sorted(rows) == [(1,), (2,)]
    await database.close()


async def test_an_enqueue_in_this_process_wakes_another_backend_of_the_file(db: Path) -> None:
    beat, publisher = await opened(db), await opened(db)
    woken = asyncio.Event()
    beat.add_wakeup_listener(woken)
    await publisher.enqueue_delayed(Envelope("m", "t", b"{}", {}), T0, task_id="m")
    await asyncio.wait_for(woken.wait(), 5)
    beat.remove_wakeup_listener(woken)
    await beat.close()
    await publisher.close()


async def test_it_says_it_is_durable_so_no_volatility_warning(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = await opened(db)
    info = await backend.info()
    assert (info.kind, info.in_process, info.persists, info.evicts_keys) == (
        "sqlite",
        False,
        True,
        False,
    )
    with caplog.at_level(logging.WARNING):
        await warn_if_volatile(backend)
    assert caplog.records == []
    await backend.close()


# -- the embedded scheduler ---------------------------------------------------------------------


def test_one_scheduler_per_file(db: Path) -> None:
    first, second = SchedulerLock(db), SchedulerLock(db)
    first.acquire()
    with pytest.raises(ConfigError, match=rf"another jararaca scheduler \(pid {os.getpid()}\)"):
        second.acquire()
    first.release()
    second.acquire()
    second.release()


def test_only_a_sqlite_backend_with_the_memory_broker_gets_the_hand_off(db: Path) -> None:
    plain = Engines.build("memory://", "memory://")
    assert embedded_engines(plain) == (plain, None)
    given = Engines.build("memory://", url_of(db), broker=MemoryBroker())
    assert embedded_engines(given)[1] is None  # a broker handed in is the caller's
    built, handoff = embedded_engines(Engines.build("memory://", url_of(db)))
    assert handoff is not None
    assert built.broker is handoff.broker
    assert (built.owns_broker, built.owns_backend) == (True, True)


def envelope(message_id: str) -> Envelope:
    return Envelope(message_id, "topic", b"{}", {})


async def test_an_entry_is_forgotten_once_every_copy_was_settled(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = SqliteBackend(url_of(db), namespace="n")
    forgotten: list[str] = []

    async def forget(ids: list[str]) -> None:
        forgotten.extend(ids)

    monkeypatch.setattr(backend, "forget_inflight", forget)
    handoff = HandOff(backend, MemoryBroker())
    fanned, lone, nobody = envelope("fan"), envelope("lone"), envelope("nobody")
    handoff.claimed([Claimed("k/fan", fanned), Claimed("k/lone", lone), Claimed("nobody", nobody)])
    handoff.published(fanned, 2)  # two handlers
    handoff.published(lone, 1)
    handoff.published(nobody, 0)  # no consumer of ours: nothing to wait for
    handoff.published(envelope("not-claimed"), 1)  # a handler's own publish: not followed
    handoff.settled(lone)  # settled before the beat handed it over
    forget_now = handoff.handed_over(["k/fan", "k/lone", "nobody", "unknown"])
    assert forget_now == ["k/lone", "nobody", "unknown"]
    assert handoff.tracked == 1  # fan: two copies to settle
    handoff.settled(fanned)
    await handoff.flush()
    assert forgotten == []
    handoff.settled(fanned)
    handoff.settled(fanned)  # a copy more than published (requeued and settled): ignored
    await handoff.flush()
    assert forgotten == ["k/fan"]
    assert handoff.tracked == 0


async def test_what_was_in_flight_at_a_stop_is_delivered_by_the_next_scheduler(
    db: Path,
) -> None:
    handled: list[tuple[str, int]] = []
    release = asyncio.Event()

    class Task(Message):
        MESSAGE_TOPIC = "unit.sqlite.task"
        n: int

    class Handlers:
        @MessageHandler(Task)
        async def first(self, task: Task) -> None:
            if task.n == 1:
                await release.wait()  # still running when the first scheduler stops
            handled.append(("first", task.n))

        @MessageHandler(Task)
        async def second(self, task: Task) -> None:
            handled.append(("second", task.n))

    app = Microservice(controllers=[Handlers])
    async with connect(backend_url=url_of(db)) as publisher:
        await publisher.delay(Task(n=0), 0)
        await publisher.delay(Task(n=1), 0)

    first = Scheduler(app, backend_url=url_of(db), interval=0.05, graceful_shutdown_seconds=0.2)
    stop = asyncio.Event()
    serving = asyncio.create_task(first.serve(stop))
    for _ in range(200):
        if len(handled) == 3:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await serving  # the run of n=1 by "first" is cancelled, its lease released
    assert sorted(handled) == [("first", 0), ("second", 0), ("second", 1)]
    reset_memory_brokers()  # as if the process had ended: nothing survives in memory

    release.set()
    second = Scheduler(app, backend_url=url_of(db), interval=0.05)
    stop = asyncio.Event()
    serving = asyncio.create_task(second.serve(stop))
    for _ in range(200):
        if len(handled) == 4:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)  # a copy handled twice would show now
    stop.set()
    await serving
    # Only the cancelled run ran again; what had been handled was recognised as done.
    assert sorted(handled) == [("first", 0), ("first", 1), ("second", 0), ("second", 1)]
    backend = await opened(db, namespace="jararaca")
    assert await backend.next_due() is None  # nothing pending or in flight
    await backend.close()
