"""The control commands for real: ``python -m jararaca schedules|runs|delayed|dead-letters|status``
against the real Redis (and RabbitMQ for dead letters), each test in a fresh namespace that is
deleted afterwards. Bad input exits 2 with one ``jararaca: error:`` line and no traceback."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.services import AMQP_URL, REDIS_URL, require_rabbitmq, require_redis

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.fixtures.dist_app:app"
ACTIONS = {"tick", "slow", "hang", "long", "everywhere"}  # (at least) the actions of APP
# Variables the commands read: a developer's shell must not point the tests elsewhere.
CLEARED = [
    f"{prefix}{name}"
    for prefix in ("JARARACA_", "")
    for name in ("BACKEND_URL", "BROKER_URL", "APP_PATH", "CONNECT_TIMEOUT")
]


@dataclass(frozen=True)
class Namespace:
    exchange: str
    broker_url: str

    def urls(self, *, broker: bool = True) -> list[str]:
        extra = ["--broker-url", self.broker_url] if broker else []
        return ["--backend-url", REDIS_URL, *extra]


async def _delete_namespace(exchange: str) -> None:
    from jararaca.backends.redis import RedisBackend

    backend = RedisBackend(REDIS_URL, namespace=exchange)
    await backend.connect()
    try:
        await backend.delete_namespace()
    finally:
        await backend.close()


@pytest.fixture
def ns() -> Iterator[Namespace]:
    require_redis()
    exchange = f"it-control-{uuid.uuid4().hex[:8]}"
    yield Namespace(exchange, f"{AMQP_URL}?exchange={exchange}")
    asyncio.run(_delete_namespace(exchange))


def jararaca(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    return subprocess.run(
        [sys.executable, "-m", "jararaca", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def ok_json(*args: str) -> Any:
    result = jararaca(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def one_error(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("jararaca: error: ")
    return line


def test_schedules_list_works_from_the_app_alone() -> None:
    result = jararaca("schedules", "list", APP)
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["ACTION", "GROUP", "CRON", "TZ", "NEXT", "FIRE"]
    assert {row.split()[0] for row in rows} >= ACTIONS
    found = {s["id"]: s for s in ok_json("schedules", "list", APP)}
    assert set(found) >= ACTIONS
    long = found["long"]
    assert (long["cron"], long["tz"], long["paused"], long["last_run"]) == (
        "*/4 * * * * *",
        "UTC",
        None,
        None,
    )
    fires = [datetime.fromisoformat(at) for at in long["next_fires"]]
    assert len(fires) == 5
    assert all(b - a == timedelta(seconds=4) for a, b in itertools.pairwise(fires))


def test_pause_shows_in_list_and_resume_clears_it(ns: Namespace) -> None:
    result = jararaca("schedules", "pause", APP, "tick", "--reason", "deploy freeze", *ns.urls())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "paused tick: deploy freeze"
    found = {s["id"]: s for s in ok_json("schedules", "list", APP, *ns.urls())}
    assert (found["tick"]["paused"], found["tick"]["paused_reason"]) == (True, "deploy freeze")
    assert found["slow"]["paused"] is False
    table = jararaca("schedules", "list", APP, *ns.urls()).stdout
    assert "paused (deploy freeze)" in table
    assert ok_json("schedules", "resume", APP, "tick", *ns.urls()) == {
        "action": "tick",
        "was_paused": True,
    }
    assert ok_json("schedules", "describe", APP, "tick", *ns.urls())["paused"] is False
    # Another namespace (another app) does not see this one's pauses.
    other = f"{AMQP_URL}?exchange={ns.exchange}-other"
    jararaca("schedules", "pause", APP, "slow", *ns.urls())
    [slow] = [
        s
        for s in ok_json(
            "schedules", "list", APP, "--backend-url", REDIS_URL, "--broker-url", other
        )
        if s["id"] == "slow"
    ]
    assert slow["paused"] is False


def test_trigger_queues_a_manual_fire_that_can_be_listed_and_cancelled(ns: Namespace) -> None:
    fire = ok_json("schedules", "trigger", APP, "long", *ns.urls())["fire_id"]
    assert fire.startswith("long@manual-")
    [pending] = ok_json("delayed", "list", APP, *ns.urls())
    assert (pending["message_id"], pending["idempotency_key"]) == (fire, None)
    assert ok_json("delayed", "list", APP, "--topic", "nope", *ns.urls()) == []
    cancel = ["delayed", "cancel", APP, "--message-id", fire, *ns.urls()]
    assert jararaca(*cancel).stdout.startswith("cancelled")
    again = jararaca(*cancel)
    assert again.returncode == 1 and again.stdout.startswith("no pending message")
    assert ok_json("delayed", "list", APP, *ns.urls()) == []


def test_backfill_queues_each_past_slot_once(ns: Namespace) -> None:
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    start = end - timedelta(seconds=12)
    window = ["--start", start.isoformat(), "--end", end.isoformat().replace("+00:00", "Z")]
    queued = ok_json("schedules", "backfill", APP, "long", *window, *ns.urls())
    slots = [int(f.split("@")[1]) for f in queued]
    assert len(queued) == 3 and all(f.startswith("long@") for f in queued)
    assert all(b - a == 4000 for a, b in itertools.pairwise(slots))
    assert all(start.timestamp() * 1000 <= s < end.timestamp() * 1000 for s in slots)
    assert ok_json("schedules", "backfill", APP, "long", *window, *ns.urls()) == []
    assert {d["message_id"] for d in ok_json("delayed", "list", APP, *ns.urls())} == set(queued)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["schedules", "describe", APP, "nope"], ["'nope'", *sorted(ACTIONS)]),
        (["schedules", "trigger", APP, "nope"], ["no action named 'nope'"]),
        (
            ["schedules", "backfill", APP, "long", "--start", "2024-13-01", "--end", "2024-01-02Z"],
            ["--start '2024-13-01'", "2024-05-01T00:00:00Z"],
        ),
        (
            [
                "schedules",
                "backfill",
                APP,
                "long",
                "--start",
                "2024-01-01T00:00:00",
                "--end",
                "2024-01-02T00:00:00Z",
            ],
            ["has no time zone"],
        ),
        (
            [
                "schedules",
                "backfill",
                APP,
                "long",
                "--start",
                "2024-01-02T00:00:00Z",
                "--end",
                "2024-01-01T00:00:00Z",
            ],
            ["end 2024-01-01T00:00:00+00:00 is not after start 2024-01-02T00:00:00+00:00"],
        ),
        (
            [
                "schedules",
                "backfill",
                APP,
                "long",
                "--start",
                "2024-01-01T00:00:00Z",
                "--end",
                "2024-02-01T00:00:00Z",
            ],
            ["more than 10,000 slots"],
        ),
        (["runs", APP, "--outcome", "nope"], ["unknown outcome 'nope'", "succeeded"]),
        (["delayed", "cancel", APP], ["exactly one of --key or --message-id"]),
    ],
)
def test_bad_input_exits_2_with_one_line(
    ns: Namespace, args: list[str], fragments: list[str]
) -> None:
    line = one_error(jararaca(*args, *ns.urls()))
    for fragment in fragments:
        assert fragment in line


def test_commands_that_read_the_backend_say_to_pass_it() -> None:
    line = one_error(jararaca("runs", APP))
    assert "--backend-url" in line and "BACKEND_URL" in line


def test_dead_letters_without_a_broker_url_say_to_pass_one(ns: Namespace) -> None:
    line = one_error(jararaca("dead-letters", "list", APP, *ns.urls(broker=False)))
    assert "--broker-url" in line


def test_an_unreachable_backend_exits_1_with_one_line() -> None:
    line = one_error(jararaca("status", APP, "--backend-url", "redis://127.0.0.1:1/0"), code=1)
    assert "redis://127.0.0.1:1/0" in line


def test_empty_namespace_answers_empty(ns: Namespace) -> None:
    assert ok_json("runs", APP, *ns.urls()) == []
    assert ok_json("status", APP, *ns.urls()) == []
    assert ok_json("delayed", "list", APP, *ns.urls()) == []
    assert jararaca("runs", APP, *ns.urls()).stdout.strip() == "no run recorded"
    [tick] = [s for s in ok_json("schedules", "list", APP, *ns.urls()) if s["id"] == "tick"]
    assert (tick["paused"], tick["last_run"], tick["running"]) == (False, None, 0)


def test_dead_letters_list_replay_and_purge_on_rabbitmq(ns: Namespace) -> None:
    require_rabbitmq()
    try:
        assert ok_json("dead-letters", "list", APP, *ns.urls()) == []
        assert ok_json("dead-letters", "replay", APP, *ns.urls()) == {"replayed": 0}
        refused = jararaca("dead-letters", "purge", APP, *ns.urls())  # no --yes, no tty
        assert refused.returncode != 0
        assert ok_json("dead-letters", "purge", APP, "--yes", *ns.urls()) == {"purged": 0}
    finally:
        asyncio.run(_delete_topology(ns.exchange))


async def _delete_topology(exchange: str) -> None:
    from jararaca.engines import make_broker

    broker = make_broker(f"{AMQP_URL}?exchange={exchange}")
    await broker.connect()
    try:
        await broker.delete_topology()  # type: ignore[attr-defined]
    finally:
        await broker.close()
