"""`jararaca scheduler --backend-url sqlite:///...` for real: killed with SIGKILL and started
again, it loses no message, runs none early or twice and doubles no slot; the control CLI
steers it from another process; a second scheduler on the same file is refused.

The app (tests/fixtures/sqlite_app.py) appends what it runs to a file as JSON lines; the
test reads that file. No Redis or RabbitMQ is needed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from jararaca import connect
from jararaca.backends.sqlite import SqliteBackend
from tests.fixtures.sqlite_app import Job

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.fixtures.sqlite_app:app"

Record = dict[str, Any]
WITNESS = 1_000  # the job enqueued after all the others were handled


class Scheduler:
    """One `jararaca scheduler` process on the test's file."""

    def __init__(self, url: str, records: Path) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "jararaca", "scheduler", APP, "--backend-url", url],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "RECORD_FILE": str(records)},
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def kill(self) -> None:
        os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self) -> str:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        out, _ = self.popen.communicate(timeout=30)
        return out


def read(records: Path) -> list[Record]:
    if not records.exists():
        return []
    return [json.loads(line) for line in records.read_text().splitlines() if line.strip()]


def wait_for(condition: Callable[[], bool], timeout: float, what: str, every: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def skipped_paused(url: str) -> int:
    """How many slots of ``tick`` the run history in the file records ``skipped_paused``."""

    async def count() -> int:
        backend = SqliteBackend(url, namespace="jararaca")
        await backend.connect()
        try:
            runs = await backend.run_history("tick", limit=100)
        finally:
            await backend.close()
        return sum(r.outcome == "skipped_paused" for r in runs)

    return asyncio.run(count())


async def enqueue(url: str, jobs: list[tuple[int, float, float]]) -> None:
    """Schedule Job(n, slow) due at each epoch instant, from this (another) process."""
    async with connect(backend_url=url) as publisher:
        for n, due, slow in jobs:
            await publisher.schedule(Job(n=n, slow=slow), datetime.fromtimestamp(due, UTC))


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, Path]:
    return f"sqlite:///{tmp_path / 'jararaca.db'}", tmp_path / "records.jsonl"


def test_kill_9_and_restart_loses_nothing_runs_nothing_twice(files: tuple[str, Path]) -> None:
    url, records = files
    first = Scheduler(url, records)
    try:
        wait_for(lambda: any(r["k"] == "END" for r in read(records)), 30, "a first tick")
        now = time.time()
        # 80 quick ones handled before the kill, 20 slow ones running at the kill (their
        # records come at their end), 100 due after it: some during the downtime.
        jobs = [(n, now + 0.5 + n / 80, 0.0) for n in range(80)]
        jobs += [(n, now + 2.0, 3.0) for n in range(80, 100)]
        jobs += [(n, now + 4.0 + (n - 100) * 0.04, 0.0) for n in range(100, 200)]
        asyncio.run(enqueue(url, jobs))
        due = {n: at for n, at, _ in jobs}

        def started_after_slow_ones() -> bool:
            return any(r["k"] == "START" and r["at"] > now + 2.6 for r in read(records))

        # Killed right after a tick started (it runs 0.6 s): that fire was running.
        wait_for(started_after_slow_ones, 30, "a tick started while the slow jobs run")
        first.kill()
    finally:
        if first.popen.poll() is None:
            first.kill()
    before = read(records)
    killed_fire = [r for r in before if r["k"] == "START"][-1]["id"]
    assert not any(r["k"] == "END" and r["id"] == killed_fire for r in before)
    handled_before = {r["n"] for r in before if r["k"] == "MSG"}
    assert set(range(80)) <= handled_before
    assert not handled_before & set(range(80, 100)), "the slow jobs were running at the kill"
    time.sleep(2)  # downtime: messages and a slot fall due meanwhile

    second = Scheduler(url, records)
    try:

        def all_handled() -> bool:
            seen = read(records)
            return sum(r["k"] == "MSG" for r in seen) >= 200 and any(
                r["k"] == "END" and r["id"] == killed_fire for r in seen
            )

        wait_for(all_handled, 60, "every message and the killed fire again")
        # Witnesses instead of a pause: a doubled message or slot would come from what the
        # restart found in the file, all handed to the worker before this job is enqueued. So
        # a copy's handler starts before the witness job's and, no slower (3 s, like the slow
        # jobs), records first; a doubled slot starts before the later tick slot ends.
        witness_at = time.time()
        asyncio.run(enqueue(url, [(WITNESS, witness_at + 0.1, 3.0)]))
        due[WITNESS] = witness_at + 0.1

        def witnessed() -> bool:
            seen = read(records)
            return any(r["k"] == "MSG" and r["n"] == WITNESS for r in seen) and any(
                r["k"] == "END" and r["scheduled"] > witness_at for r in seen
            )

        wait_for(witnessed, 30, "the witness job and a tick slot after it")
    finally:
        out = second.stop()
    assert second.popen.returncode == 0, out

    seen = read(records)
    handled = [r for r in seen if r["k"] == "MSG"]
    counts = Counter(r["n"] for r in handled)
    assert sorted(counts) == [*range(200), WITNESS], "every message delivered"
    assert [n for n, c in counts.items() if c > 1] == [], "no message delivered twice"
    early = [r["n"] for r in handled if r["at"] < due[r["n"]] - 0.002]
    assert early == [], "no message delivered before it was due"
    assert all(abs(r["due"] - due[r["n"]]) < 0.002 for r in handled)

    starts: dict[str, list[Record]] = defaultdict(list)
    for r in seen:
        if r["k"] == "START":
            starts[r["id"]].append(r)
    ends = Counter(r["id"] for r in seen if r["k"] == "END")
    assert [f for f, n in ends.items() if n > 1] == [], "no slot run to its end twice"
    doubled = {f: [(r["attempt"], r["pid"]) for r in s] for f, s in starts.items() if len(s) > 1}
    # Only the fire running at the kill ran again: once more, as attempt 2, in the new process.
    assert doubled == {killed_fire: [(1, first.pid), (2, second.pid)]}
    # The slots of the two processes do not overlap (no slot of the first run by the second).
    first_slots = {f for f, s in starts.items() if s[0]["pid"] == first.pid}
    second_slots = {f for f, s in starts.items() if s[-1]["pid"] == second.pid}
    assert first_slots & second_slots == {killed_fire}

    async def left_over() -> tuple[int, int]:
        backend = SqliteBackend(url, namespace="jararaca")
        await backend.connect()
        try:
            pending = await backend.pending_count()
            flying = await backend.next_due()
        finally:
            await backend.close()
        return pending, int(flying is not None)

    assert asyncio.run(left_over()) == (0, 0), "nothing left pending or in flight"


def test_pause_from_another_process_stops_the_action_from_the_next_slot(
    files: tuple[str, Path],
) -> None:
    url, records = files
    scheduler = Scheduler(url, records)
    try:
        wait_for(lambda: sum(r["k"] == "END" for r in read(records)) >= 2, 30, "two ticks")
        command = ["schedules", "pause", APP, "tick", "--backend-url", url, "--reason", "why"]
        pause = subprocess.run(
            [sys.executable, "-m", "jararaca", *command],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        paused_at = time.time()
        assert pause.returncode == 0, pause.stdout + pause.stderr
        # Three slots after the pause, each recorded skipped (a slot run instead would have
        # started, and written START, before the later slots were claimed).
        wait_for(lambda: skipped_paused(url) >= 3, 30, "three slots skipped", every=0.2)
        status = subprocess.run(
            [sys.executable, "-m", "jararaca", "runs", APP, "--backend-url", url, "--json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert status.returncode == 0, status.stdout + status.stderr
    finally:
        out = scheduler.stop()
    assert scheduler.popen.returncode == 0, out
    slots = [r["scheduled"] for r in read(records) if r["k"] == "START"]
    assert slots, "the action ran before the pause"
    assert [s for s in slots if s > paused_at] == [], "no slot after the pause ran"
    runs = json.loads(status.stdout)
    skipped = [r for r in runs if r["outcome"] == "skipped_paused"]
    assert len(skipped) >= 3, runs  # the CLI shows the skipped slots too


def test_a_second_scheduler_on_the_same_file_is_refused(files: tuple[str, Path]) -> None:
    url, records = files
    first = Scheduler(url, records)
    try:
        wait_for(lambda: any(r["k"] == "START" for r in read(records)), 30, "a first tick")
        second = subprocess.run(
            [sys.executable, "-m", "jararaca", "scheduler", APP, "--backend-url", url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        first.stop()
    assert second.returncode != 0
    assert f"another jararaca scheduler (pid {first.pid}) is running" in second.stderr
    assert "Traceback" not in second.stderr
