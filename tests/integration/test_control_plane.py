"""The control plane against real processes (beat, worker, Redis, RabbitMQ): pause and resume,
trigger, backfill, run history, cancelling a delayed message, dynamic schedules across a beat
restart, and the processes' heartbeats. Every wait is on a record the app printed or on the
backend's state, never on a fixed sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from jararaca import connect
from jararaca.control import Control
from jararaca.wire import parse_instant
from tests.fixtures.control_app import Note, app
from tests.integration.cluster import LEASE_SECONDS, Cluster, live_cluster

APP = "tests.fixtures.control_app:app"
T = TypeVar("T")


@pytest.fixture
def ops(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    label = request.node.name.removeprefix("test_")[:16].replace("_", "-")
    with live_cluster(f"ctl-{label}", APP) as cluster:
        yield cluster


def control(cluster: Cluster, use: Callable[[Control], Awaitable[T]]) -> T:
    async def run() -> T:
        async with Control(
            app, backend_url=cluster.backend_url, broker_url=cluster.broker_url
        ) as c:
            return await use(c)

    return asyncio.run(run())


def fire_ids(cluster: Cluster, kind: str) -> list[str]:
    return [record[1] for record in cluster.records(kind)]


def test_pause_stops_fires_from_the_next_slot_and_resume_replays_nothing(ops: Cluster) -> None:
    ops.start("beat", "--actions", "tick")
    ops.start("worker", "--groups", "control")
    ops.wait_until(lambda: len(fire_ids(ops, "RUN")) >= 2, 30, "two ticks")
    control(ops, lambda c: c.pause("tick", reason="maintenance"))
    paused_at = datetime.now(UTC)

    def skipped() -> list[str]:
        runs = control(ops, lambda c: c.runs(action="tick", outcome="skipped_paused"))
        return [r.fire_id for r in runs]

    ops.wait_until(lambda: len(skipped()) >= 3, 30, "three slots skipped while paused")
    infos = control(ops, lambda c: c.schedules())
    tick = next(s for s in infos if s.id == "tick")
    assert (tick.paused, tick.paused_reason) == (True, "maintenance")
    assert control(ops, lambda c: c.resume("tick")) is True
    resumed_at = datetime.now(UTC)
    ops.wait_until(
        lambda: any(parse_instant(r[2]) > resumed_at for r in ops.records("RUN")),
        30,
        "a tick after resume",
    )
    ran = fire_ids(ops, "RUN")
    paused_slots = skipped()
    assert not set(ran) & set(paused_slots), "a paused slot ran"
    # Nothing scheduled between the pause (plus the slot already on its way) and the resume ran.
    assert not [
        r
        for r in ops.records("RUN")
        if paused_at + timedelta(seconds=1) < parse_instant(r[2]) < resumed_at
    ]
    assert len(ran) == len(set(ran))


def test_trigger_runs_a_yearly_action_once_at_once(ops: Cluster) -> None:
    beat = ops.start("beat", "--actions", "yearly,tick")
    ops.start("worker", "--groups", "control")
    ops.wait_ready(beat)
    ops.wait_until(lambda: bool(fire_ids(ops, "RUN")), 30, "the worker running")
    asked = datetime.now(UTC)
    fire = control(ops, lambda c: c.trigger("yearly"))
    assert fire.startswith("yearly@manual-")
    ops.wait_until(lambda: fire in fire_ids(ops, "YEARLY"), 10, "the triggered fire")
    print(f"trigger -> run: {(datetime.now(UTC) - asked).total_seconds():.3f} s")
    second = control(ops, lambda c: c.trigger("yearly"))
    ops.wait_until(lambda: second in fire_ids(ops, "YEARLY"), 10, "a second trigger (witness)")
    assert fire_ids(ops, "YEARLY") == [fire, second]

    def outcome() -> str | None:
        runs = control(ops, lambda c: c.runs(action="yearly"))
        return next((r.outcome for r in runs if r.fire_id == fire), None)

    ops.wait_until(lambda: outcome() == "succeeded", 10, "the trigger recorded succeeded")


def test_backfill_runs_each_slot_once_and_again_nothing(ops: Cluster) -> None:
    ops.start("beat", "--actions", "ten_minutes,yearly")
    ops.start("worker", "--groups", "control")
    now = datetime.now(UTC)
    end = now.replace(minute=now.minute - now.minute % 10, second=0, microsecond=0)
    start = end - timedelta(hours=1)
    queued = control(ops, lambda c: c.backfill("ten_minutes", start, end))
    assert len(queued) == 6 and queued[0].startswith("ten_minutes@")
    ops.wait_until(lambda: len(fire_ids(ops, "TEN")) >= 6, 30, "six backfilled slots")
    assert sorted(fire_ids(ops, "TEN")) == sorted(queued)
    again = control(ops, lambda c: c.backfill("ten_minutes", start, end))
    assert again == []
    witness = control(ops, lambda c: c.trigger("yearly"))
    ops.wait_until(lambda: witness in fire_ids(ops, "YEARLY"), 15, "a later fire (witness)")
    assert sorted(fire_ids(ops, "TEN")) == sorted(queued)  # nothing ran twice


def test_run_history_shows_each_outcome_with_the_fire_ids_the_app_saw(ops: Cluster) -> None:
    ops.start("beat", "--actions", "tick,fails,hangs,slowpoke")
    ops.start("worker", "--groups", "control")

    def outcomes(action: str) -> dict[str, str]:
        runs = control(ops, lambda c: c.runs(action=action, limit=100))
        return {r.fire_id: r.outcome for r in runs}

    ops.wait_until(lambda: "failed" in outcomes("fails").values(), 30, "a failed run")
    ops.wait_until(lambda: "timed_out" in outcomes("hangs").values(), 30, "a timed-out run")
    ops.wait_until(
        lambda: "skipped_overlap" in outcomes("slowpoke").values(), 30, "a skipped overlap"
    )
    ops.wait_until(lambda: "succeeded" in outcomes("tick").values(), 30, "a succeeded run")
    failed = [r for r in control(ops, lambda c: c.runs(action="fails")) if r.outcome == "failed"]
    assert failed[0].error is not None and "broken on purpose" in failed[0].error
    assert failed[0].fire_id in fire_ids(ops, "FAIL")
    succeeded = {f for f, o in outcomes("tick").items() if o == "succeeded"}
    assert succeeded <= set(fire_ids(ops, "RUN"))
    timed_out = {f for f, o in outcomes("hangs").items() if o == "timed_out"}
    assert timed_out <= set(fire_ids(ops, "HANG"))
    skipped = {f for f, o in outcomes("slowpoke").items() if o == "skipped_overlap"}
    assert not skipped & set(fire_ids(ops, "SLOW")), "a skipped fire ran"
    everything = control(ops, lambda c: c.runs(limit=500))
    assert {r.action_id for r in everything} >= {"tick", "fails", "hangs", "slowpoke"}


def test_a_cancelled_delayed_message_is_never_delivered(ops: Cluster) -> None:
    ops.start("beat", "--actions", "yearly")
    ops.start("worker", "--groups", "control")

    async def enqueue() -> None:
        async with connect(broker_url=ops.broker_url, backend_url=ops.backend_url):
            await Note(text="cancelled").delay(3, idempotency_key="note-1")
            await Note(text="kept").delay(3, idempotency_key="note-2")

    asyncio.run(enqueue())
    listed = control(ops, lambda c: c.delayed(topic="control.note"))
    assert sorted(d.idempotency_key or "" for d in listed) == ["note-1", "note-2"]
    assert control(ops, lambda c: c.cancel_delayed(idempotency_key="note-1")) is True
    ops.wait_until(lambda: any(r[1].startswith("kept:") for r in ops.records("NOTE")), 30, "kept")
    ops.wait_until(ops.delayed_queue_empty, 30, "the delayed queue empty")
    assert [r[1].split(":")[0] for r in ops.records("NOTE")] == ["kept"]


def test_a_dynamic_schedule_fires_each_second_and_survives_a_beat_restart(ops: Cluster) -> None:
    beat = ops.start("beat", "--actions", "yearly")
    ops.start("worker", "--groups", "control")
    ops.wait_ready(beat)
    info = control(
        ops, lambda c: c.create_schedule("dyn-note", "* * * * * *", Note(text="dynamic"))
    )
    assert (info.id, info.cron) == ("dyn-note", "* * * * * *")

    def notes() -> list[str]:
        return [r[1].split(":", 1)[1] for r in ops.records("NOTE") if r[1].startswith("dynamic:")]

    ops.wait_until(lambda: len(notes()) >= 3, 30, "three dynamic fires")
    assert beat.terminate() == 0
    restarted_at = datetime.now(UTC)
    ops.start("beat", "--actions", "yearly")
    ops.wait_until(lambda: _fired_after(ops, restarted_at), 30, "a dynamic fire after the restart")
    assert len(notes()) == len(set(notes())), "a dynamic fire was delivered twice"
    assert all(n.startswith("dyn-note@") for n in notes())
    assert control(ops, lambda c: c.delete_schedule("dyn-note")) is True


def _fired_after(cluster: Cluster, instant: datetime) -> bool:
    for record in cluster.records("NOTE"):
        fire = record[1].split(":", 1)[1]
        if fire.startswith("dyn-note@"):
            at = datetime.fromtimestamp(int(fire.split("@")[1]) / 1000, tz=UTC)
            if at > instant + timedelta(seconds=1):
                return True
    return False


def test_status_lists_live_processes_and_a_killed_worker_as_gone(ops: Cluster) -> None:
    beat = ops.start("beat", "--actions", "yearly")
    worker = ops.start("worker", "--groups", "control")
    ops.wait_ready(beat)
    ops.wait_ready(worker)

    def by_pid() -> dict[int, tuple[str, bool]]:
        return {p.pid: (p.kind, p.alive) for p in control(ops, lambda c: c.processes())}

    ops.wait_until(lambda: len(by_pid()) >= 2, 20, "both heartbeats")
    assert by_pid()[beat.popen.pid] == ("beat", True)
    assert by_pid()[worker.popen.pid] == ("worker", True)
    worker.kill()
    killed_at = datetime.now(UTC)
    ops.wait_until(
        lambda: by_pid().get(worker.popen.pid, ("worker", False))[1] is False,
        4 * LEASE_SECONDS + 10,
        "the killed worker shown as gone",
    )
    gone_after = (datetime.now(UTC) - killed_at).total_seconds()
    assert gone_after <= 4 * LEASE_SECONDS + 10
    assert by_pid()[beat.popen.pid] == ("beat", True)
