"""Bad high-availability URLs (Sentinel, Cluster, shards, several RabbitMQ hosts, quorum
queues) stop ``jararaca beat`` and ``jararaca worker`` before they connect anywhere: exit 2,
one ``jararaca: error:`` paragraph naming the bad value, no traceback, no password.

The other URL of each command names a closed port with a short ``--connect-timeout``: a check
that came only after connecting would end in exit 1 (servers unreachable), not 2, and fail
here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.fixtures.seconds_app:app"
REDIS_SECRET = "r3dis-s3cret"
AMQP_SECRET = "amqp-s3cret"
# Well-formed but unreachable (port 1 is closed on loopback).
GOOD_BROKER = f"amqp://guest:{AMQP_SECRET}@127.0.0.1:1/?exchange=ha-urls"
GOOD_BACKEND = f"redis://:{REDIS_SECRET}@127.0.0.1:1/0"

# (label, broker URL, backend URL, fragments the message must contain)
CASES = [
    (
        "sentinel-without-service",
        GOOD_BROKER,
        f"redis+sentinel://:{REDIS_SECRET}@127.0.0.1:26379,127.0.0.1:26380",
        ["Sentinel URL", "service", "127.0.0.1:26379,127.0.0.1:26380"],
    ),
    (
        "sentinel-with-empty-service",
        GOOD_BROKER,
        f"redis+sentinel://:{REDIS_SECRET}@127.0.0.1:26379,127.0.0.1:26380/",
        ["Sentinel URL", "service"],
    ),
    (
        "wait-replicas-on-cluster",
        GOOD_BROKER,
        f"redis+cluster://:{REDIS_SECRET}@127.0.0.1:7001,127.0.0.1:7002?wait_replicas=1",
        ["wait_replicas", "Cluster"],
    ),
    (
        "zero-shards-on-cluster",
        GOOD_BROKER,
        f"redis+cluster://:{REDIS_SECRET}@127.0.0.1:7001,127.0.0.1:7002?shards=0",
        ["shards='0'", "1 to 1024"],
    ),
    (
        "zero-shards-on-plain-redis",
        GOOD_BROKER,
        f"redis://:{REDIS_SECRET}@127.0.0.1:6379/0?shards=0",
        ["shards='0'"],
    ),
    (
        "empty-amqp-host-among-several",
        f"amqp://guest:{AMQP_SECRET}@127.0.0.1:5672,,127.0.0.1:5674/?exchange=ha-urls",
        GOOD_BACKEND,
        ["empty host", "'127.0.0.1:5672,,127.0.0.1:5674'"],
    ),
    (
        "amqp-host-without-name",
        f"amqp://guest:{AMQP_SECRET}@127.0.0.1:5672,:5673/?exchange=ha-urls",
        GOOD_BACKEND,
        ["empty host", "127.0.0.1:5672,:5673"],
    ),
    (
        "bogus-queue-type",
        f"amqp://guest:{AMQP_SECRET}@127.0.0.1:5672,127.0.0.1:5674/?queue_type=bogus",
        GOOD_BACKEND,
        ["queue_type 'bogus'", "classic", "quorum"],
    ),
]


def run(command: str, broker: str, backend: str) -> subprocess.CompletedProcess[str]:
    # The URLs come from the options alone, and the error as text (json would be one line too,
    # but not the one checked here).
    names = ("BROKER_URL", "BACKEND_URL", "JARARACA_BROKER_URL", "JARARACA_BACKEND_URL")
    unset = ("LOG_FORMAT", "JARARACA_LOG_FORMAT")
    urls = ["--broker-url", broker, "--backend-url", backend]
    env = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "-m", "jararaca", command, APP, "--connect-timeout", "2", *urls],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, **dict.fromkeys(names, "")},
        check=False,
    )


@pytest.mark.parametrize("command", ["beat", "worker"])
@pytest.mark.parametrize(
    ("broker", "backend", "fragments"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_a_bad_ha_url_is_one_clear_paragraph_without_the_password(
    command: str, broker: str, backend: str, fragments: list[str]
) -> None:
    result = run(command, broker, backend)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert REDIS_SECRET not in output and AMQP_SECRET not in output
    assert "Traceback" not in output
    # The whole of stderr is one paragraph: the error line and nothing else (no log lines of
    # a start-up that went further, no blank line before a second part).
    message = result.stderr.strip()
    assert message.startswith("jararaca: error: "), output
    assert "\n\n" not in message and message.count("jararaca: error") == 1, output
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    # The URL is named, its password masked.
    assert "***@" in message
