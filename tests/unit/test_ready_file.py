"""JARARACA_READY_FILE: written whole with this process's pid, removed only while it still
holds it, and a place that cannot be written is bad input naming the variable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from jararaca import ready_file
from jararaca.errors import ConfigError


def test_unset_asks_for_no_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ready_file.VARIABLE, raising=False)
    assert ready_file.announce() is None


def test_the_file_holds_the_pid_and_goes_when_withdrawn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "worker.ready"
    monkeypatch.setenv(ready_file.VARIABLE, str(target))
    path = ready_file.announce()
    assert path == target
    assert target.read_text() == f"{os.getpid()}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["worker.ready"]  # nothing aside left
    ready_file.withdraw(target)
    assert not target.exists()
    ready_file.withdraw(target)  # already gone: nothing to do, no error


def test_a_file_another_process_wrote_since_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "beat.ready"
    monkeypatch.setenv(ready_file.VARIABLE, str(target))
    ready_file.announce()
    target.write_text("1\n")  # a --reload child started since
    ready_file.withdraw(target)
    assert target.read_text() == "1\n"


def test_a_folder_that_does_not_exist_is_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "missing" / "worker.ready"
    monkeypatch.setenv(ready_file.VARIABLE, str(target))
    with pytest.raises(ConfigError) as info:
        ready_file.announce()
    message = str(info.value)
    assert ready_file.VARIABLE in message
    assert str(target) in message
    assert "No such file or directory" in message
    assert not (tmp_path / "missing").exists()


ROOT = Path(__file__).resolve().parents[2]


def _scheduler(ready: Path) -> subprocess.Popen[str]:
    env = {**os.environ, ready_file.VARIABLE: str(ready)}
    command = [sys.executable, "-m", "jararaca", "scheduler", "examples.demo_app:app"]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_the_scheduler_command_is_ready_until_told_to_stop(tmp_path: Path) -> None:
    ready = tmp_path / "scheduler.ready"
    process = _scheduler(ready)
    try:
        _wait(lambda: ready.exists() or process.poll() is not None, "the ready file")
        assert ready.read_text() == f"{process.pid}\n"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert not ready.exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_scheduler_command_refuses_a_ready_file_it_cannot_write(tmp_path: Path) -> None:
    ready = tmp_path / "missing" / "scheduler.ready"
    process = _scheduler(ready)
    try:
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 2
    errors = [line for line in err.splitlines() if line.startswith("jararaca: error:")]
    assert len(errors) == 1 and ready_file.VARIABLE in errors[0], err
    assert "Traceback" not in err
