"""One SQLite connection per backend, where every state change is a transaction.

An operation is a plain function of the connection (``op(conn) -> result``). Operations asked
for during one turn of the event loop are grouped into one transaction (group commit): each
still runs alone and in order, and no caller is answered before the transaction holding its
change is committed. Writes open with ``BEGIN IMMEDIATE`` (the file's write lock, taken before
anything is read, so two processes never interleave a read-modify-write); batches that only
read use a deferred ``BEGIN``, which in WAL mode never waits for a writer.

Where a transaction runs: with ``synchronous=NORMAL`` a commit is an append to the log in the
page cache (no sync), so it runs on the event loop's thread at once, taking microseconds, with
SQLite's busy timeout at 0. Should the file be busy (another process holds its write lock),
or with ``synchronous=FULL`` (a sync per commit), the batch runs on a thread of its own, which
waits for the lock (SQLite's busy timeout, then retries with backoff) for up to
:data:`BUSY_RETRY_SECONDS` before the callers get an error. The connection is used by one of
the two at a time, never both. Running on a thread always would cost more: Python's sqlite3
releases the GIL around every statement, and with the loop busy (a worker draining a burst)
the thread waits for it each time (measured: 146 µs per operation instead of 35).

The log is copied into the database (a checkpoint) on that thread too, by a second
connection, once it has grown past :data:`CHECKPOINT_BYTES`: the sync it does never stalls the
event loop (see :meth:`Database._maybe_checkpoint`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from jararaca.errors import BackendError, JararacaError

log = logging.getLogger("jararaca.backends.sqlite")

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]
Results = list[tuple[bool, Any]]

BUSY_TIMEOUT_MS = 2_000  # SQLite's own wait for a lock, per attempt, on the thread
BUSY_RETRY_SECONDS = 60.0  # how long a busy file is retried before the caller gets an error
MAX_BATCH = 1_000  # operations per transaction
CHECKPOINT_BYTES = 8 * 1024 * 1024  # log size past which it is copied into the database
LOG_LIMIT_BYTES = 64 * 1024 * 1024  # log size past which the log is made to start over
CACHE_KIB = 16_384  # SQLite's page cache for this connection
CHECKPOINT_LOOK_SECONDS = 1.0  # how often the log's size is looked at (while writing)


def is_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


class _Busy(Exception):
    """The write lock is held by another connection: run the batch on the thread."""


class _Split(Exception):
    """One of several ops raised (nothing was committed): run each alone."""


class Database:
    """The connection, the thread for waiting and syncing, and the operations queued."""

    def __init__(
        self,
        file: Path,
        *,
        inline: bool = True,
        busy_retry_seconds: float = BUSY_RETRY_SECONDS,
    ) -> None:
        self.file = file
        self.inline = inline  # transactions on the loop's thread when the file is free
        self.busy_retry_seconds = busy_retry_seconds
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._checkpointer: sqlite3.Connection | None = None  # on the thread only
        self._checkpointing: asyncio.Future[None] | None = None
        self._looked_at = 0.0
        self._pending: list[tuple[Op, asyncio.Future[Any], bool]] = []
        self._flusher: asyncio.Task[None] | None = None

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    async def open(self, prepare: Callable[[sqlite3.Connection], None]) -> None:
        """Connect and run ``prepare`` (checks, pragmas, migrations) on the thread."""
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="jararaca-sqlite")
        try:
            await self._in_thread(self._connect, prepare)
        except BaseException:
            await self.close()
            raise

    def _connect(self, prepare: Callable[[sqlite3.Connection], None]) -> None:
        # isolation_level=None: the module never begins transactions; _transaction does.
        conn = sqlite3.connect(
            str(self.file),
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,  # the loop's thread or ours, one at a time
        )
        try:
            prepare(conn)
            conn.execute("PRAGMA wal_autocheckpoint = 0")  # _maybe_checkpoint does it
            conn.execute(f"PRAGMA journal_size_limit = {CHECKPOINT_BYTES * 4}")
            conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            if self.inline:
                conn.execute("PRAGMA busy_timeout = 0")
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    async def close(self) -> None:
        """Finish what is queued, then close (the last connection checkpoints the log)."""
        if self._flusher is not None:
            await asyncio.wait([self._flusher])
        if self._checkpointing is not None:
            await asyncio.wait([self._checkpointing])
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
        finally:
            executor.shutdown(wait=False)

    def _disconnect(self) -> None:
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            checkpointer.close()
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA optimize")
            conn.close()

    async def _in_thread(self, func: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise BackendError(f"the SQLite backend on {self.file} is not connected")
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

    async def run(self, op: Callable[[sqlite3.Connection], T], *, write: bool = True) -> T:
        """Run ``op`` in a transaction (shared with the operations asked for meanwhile) and
        return what it returned, once committed. ``write=False`` promises it only reads."""
        if self._conn is None:
            raise BackendError(f"the SQLite backend on {self.file} is not connected")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((op, future, write))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                ops = [op for op, _, _ in batch]
                write = any(w for _, _, w in batch)
                try:
                    results = await self._execute(ops, write)
                except BaseException as exc:
                    error = exc if isinstance(exc, JararacaError) else self.failure(exc)
                    for _, future, _ in batch:
                        if not future.done():
                            future.set_exception(error)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, future, _), (ok, value) in zip(batch, results, strict=True):
                    if not future.done():
                        if ok:
                            future.set_result(value)
                        else:
                            future.set_exception(
                                value if isinstance(value, JararacaError) else self.failure(value)
                            )
                if write:
                    await self._maybe_checkpoint()
        finally:
            self._flusher = None

    async def _execute(self, ops: Sequence[Op], write: bool) -> Results:
        try:
            if self.inline:
                try:
                    return self._transaction(ops, write)
                except _Busy:
                    pass  # another process writes: wait for it on the thread
            return await self._in_thread(self._patiently, ops, write)
        except _Split:
            # One op raised: nothing was committed; each runs alone, so it fails alone.
            results: Results = []
            for op in ops:
                try:
                    results += await self._execute([op], write)
                except Exception as exc:
                    results.append((False, exc))
            return results

    def failure(self, exc: BaseException) -> BackendError:
        if is_busy(exc) or isinstance(exc, _Busy):
            return BackendError(
                f"the SQLite file {self.file} stayed busy for {self.busy_retry_seconds:.0f} s: "
                "another process held its write lock all along (a long transaction, or a "
                f"stuck process): {exc}"
            )
        return BackendError(f"the SQLite file {self.file} failed: {exc}")

    # -- transactions ---------------------------------------------------------------------

    def _transaction(self, ops: Sequence[Op], write: bool) -> Results:
        """Run ``ops`` in one transaction, or nothing: raises :class:`_Busy` when another
        connection holds the write lock, :class:`_Split` when one of several ops raised."""
        conn = self._conn
        if conn is None:
            raise BackendError(f"the SQLite backend on {self.file} is closed")
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            values = [op(conn) for op in ops]
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if is_busy(exc):
                raise _Busy(str(exc)) from None
            if not isinstance(exc, Exception):
                raise
            if len(ops) > 1:
                raise _Split from exc
            if isinstance(exc, sqlite3.Error):
                raise  # the file failed (full, corrupt, I/O): for every caller
            return [(False, exc)]  # the op's own error, for its caller
        return [(True, value) for value in values]

    def _patiently(self, ops: Sequence[Op], write: bool) -> Results:
        """On the thread: wait for the write lock (SQLite's busy timeout, then retries)."""
        conn = self._conn
        if conn is None:
            raise BackendError(f"the SQLite backend on {self.file} is closed")
        deadline = time.monotonic() + self.busy_retry_seconds
        pause = 0.01
        warned = False
        if self.inline:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        try:
            while True:
                try:
                    return self._transaction(ops, write)
                except _Busy:
                    if time.monotonic() >= deadline:
                        raise
                if not warned:
                    log.info("%s is busy (another process writes): waiting", self.file)
                    warned = True
                time.sleep(pause)
                pause = min(pause * 2, 0.5)
        finally:
            if self.inline:
                conn.execute("PRAGMA busy_timeout = 0")

    # -- checkpoints ----------------------------------------------------------------------

    async def _maybe_checkpoint(self) -> None:
        """Copy the log into the database once it outgrew :data:`CHECKPOINT_BYTES`, on the
        thread (a checkpoint syncs the disk) with a connection of its own: one C call that
        leaves the GIL to the loop, so it runs beside the writes. Under steady writes the log
        cannot start over that way (frames keep coming), so past :data:`LOG_LIMIT_BYTES` this
        connection checkpoints between two of its transactions, waiting for the writes of
        other connections (short: most frames are copied already), and the next write starts
        the log over."""
        now = time.monotonic()
        if now - self._looked_at < CHECKPOINT_LOOK_SECONDS:
            return
        self._looked_at = now
        try:
            size = self.file.with_name(self.file.name + "-wal").stat().st_size
        except OSError:
            return
        if size >= LOG_LIMIT_BYTES:
            if self._checkpointing is not None:
                await asyncio.wait([self._checkpointing])
            try:
                await self._in_thread(self._checkpoint, self._conn)
            except (sqlite3.Error, JararacaError) as exc:
                log.warning("checkpointing %s failed: %s", self.file, exc)
        elif size >= CHECKPOINT_BYTES and self._checkpointing is None:
            self._checkpointing = asyncio.ensure_future(self._in_thread(self._checkpoint, None))
            self._checkpointing.add_done_callback(self._checkpointed)

    def _checkpoint(self, conn: sqlite3.Connection | None) -> None:
        if conn is None:
            if self._checkpointer is None:
                self._checkpointer = sqlite3.connect(
                    str(self.file), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
                )
            # PASSIVE: it never waits for (nor blocks) readers and writers.
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            return
        # RESTART: it waits (up to the busy timeout) for the other connections' writes and
        # reads of the log to end, so that the next write starts the log over.
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        try:
            conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
        finally:
            if self.inline:
                conn.execute("PRAGMA busy_timeout = 0")

    def _checkpointed(self, done: asyncio.Future[None]) -> None:
        self._checkpointing = None
        if not done.cancelled() and done.exception() is not None:
            log.warning("checkpointing %s failed: %s", self.file, done.exception())
