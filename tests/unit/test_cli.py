"""The CLI's error paths: one clear line, a non-zero exit, no traceback of our internals."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def jararaca(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jararaca", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("jararaca: error")]


def test_a_bad_cron_stops_start_up_with_one_line_naming_action_and_field() -> None:
    result = jararaca("scheduler", "tests.fixtures.bad_cron_app:app")
    assert result.returncode == 2
    [line] = error_lines(result)
    assert "Reports.monthly" in line
    assert "day-of-month" in line
    assert "Traceback" not in result.stderr


def test_an_unknown_module_says_what_to_do() -> None:
    result = jararaca("scheduler", "no_such_module:app")
    assert result.returncode == 2
    [line] = error_lines(result)
    assert "no_such_module" in line
    assert "PYTHONPATH" in line


def test_an_app_that_raises_on_import_is_reported_with_its_location() -> None:
    result = jararaca("scheduler", "tests.fixtures.raising_app:app")
    assert result.returncode == 2
    [line] = error_lines(result)
    assert "DATABASE_URL" in line
    assert "raising_app.py:3" in line
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["scheduler", "tests.fixtures.seconds_app"], "module:attribute"),
        (["scheduler", "tests.fixtures.seconds_app:nope"], "no attribute 'nope'"),
        (
            ["scheduler", "tests.fixtures.seconds_app:app", "--actions", "nope"],
            "no action named nope",
        ),
    ],
)
def test_bad_app_paths_and_filters(args: list[str], fragment: str) -> None:
    result = jararaca(*args)
    assert result.returncode == 2
    [line] = error_lines(result)
    assert fragment in line


def test_bad_urls_are_refused_without_printing_the_password() -> None:
    result = jararaca(
        "beat",
        "tests.fixtures.seconds_app:app",
        "--broker-url",
        "kafka://user:s3cret@localhost:9092",
        "--backend-url",
        "redis://127.0.0.1:6379",
    )
    assert result.returncode == 2
    [line] = error_lines(result)
    assert "amqp://" in line
    assert "s3cret" not in result.stderr


def test_missing_broker_url_is_a_usage_error() -> None:
    names = ("BROKER_URL", "BACKEND_URL", "JARARACA_BROKER_URL", "JARARACA_BACKEND_URL")
    unset = dict.fromkeys(names, "")
    result = jararaca("beat", "tests.fixtures.seconds_app:app", env=unset)
    assert result.returncode == 2
    assert "--broker-url" in result.stderr


def test_version_prints_the_installed_version() -> None:
    result = jararaca("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"jararaca {version('jararaca')}\n"


@pytest.mark.parametrize(
    "args",
    [
        ["--log-level", "warn", "scheduler", "tests.fixtures.bad_cron_app:app"],
        ["scheduler", "tests.fixtures.bad_cron_app:app", "--log-level", "DEBUG"],
    ],
)
def test_log_level_goes_before_or_after_the_command(args: list[str]) -> None:
    result = jararaca(*args)
    assert result.returncode == 2  # the app's bad cron, not a usage error
    [line] = error_lines(result)
    assert "Reports.monthly" in line


def test_reload_needs_an_existing_src_dir() -> None:
    result = jararaca(
        "scheduler", "tests.fixtures.seconds_app:app", "--reload", "--src-dir", "nowhere"
    )
    assert result.returncode == 2
    [line] = error_lines(result)
    assert "'nowhere'" in line
