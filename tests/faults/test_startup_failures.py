"""Start-up against unreachable servers, refused credentials and bad declarations: one clear
paragraph, a non-zero exit, no credentials printed (guarantee 10, issue: bad configuration)."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.integration.cluster import ROOT, Cluster
from tests.services import AMQP_URL, REDIS_URL, require_rabbitmq, require_redis


def run(*args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "jararaca", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return result, time.monotonic() - started


def errors(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("jararaca: error")]


def test_unreachable_broker_retries_for_connect_timeout_then_exits_non_zero() -> None:
    require_redis()
    result, took = run(
        "worker",
        "tests.fixtures.dist_app:app",
        "--broker-url",
        "amqp://guest:Sup3rSecret@127.0.0.1:1/?exchange=x",
        "--backend-url",
        REDIS_URL,
        "--connect-timeout",
        "3",
    )
    assert result.returncode == 1
    assert 3 <= took < 30
    [line] = errors(result)
    assert "127.0.0.1:1" in line
    assert "Sup3rSecret" not in result.stderr
    assert result.stderr.count("retrying for up to") == 1  # logged once, not per attempt
    assert "Traceback" not in result.stderr


def test_unreachable_redis_exits_non_zero_with_a_clear_message() -> None:
    require_rabbitmq()
    result, _ = run(
        "beat",
        "tests.fixtures.dist_app:app",
        "--broker-url",
        f"{AMQP_URL}?exchange=it-unreachable",
        "--backend-url",
        "redis://:pw-Secret@127.0.0.1:1/0",
        "--connect-timeout",
        "1",
    )
    assert result.returncode == 1
    [line] = errors(result)
    assert "Redis" in line
    assert "pw-Secret" not in result.stderr


def test_wrong_credentials_fail_at_once_with_exit_2() -> None:
    require_rabbitmq()
    require_redis()
    result, took = run(
        "worker",
        "tests.fixtures.dist_app:app",
        "--broker-url",
        "amqp://guest:Wr0ngPass@127.0.0.1:5672/?exchange=it-creds",
        "--backend-url",
        REDIS_URL,
    )
    assert result.returncode == 2
    assert took < 20  # no waiting out the connect timeout for a refused login
    [line] = errors(result)
    assert "refused the login" in line
    assert "Wr0ngPass" not in result.stderr


def test_an_invalid_time_zone_stops_start_up() -> None:
    result, _ = run("scheduler", "tests.fixtures.bad_tz_app:app")
    assert result.returncode == 2
    [line] = errors(result)
    assert "Europe/Atlantis" in line
    assert "Reports.morning" in line


def test_a_redis_that_persists_nothing_gets_one_loud_warning(cluster: Cluster) -> None:
    beat = cluster.start("beat", "--actions", "tick")
    cluster.wait_ready(beat)
    warnings = [line for line in beat.lines if "DATA AT RISK" in line]
    # The shared test Redis runs with --save "" --appendonly no.
    assert len(warnings) == 1
    assert "appendonly yes" in warnings[0]
