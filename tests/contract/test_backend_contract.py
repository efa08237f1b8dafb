"""The backend contract: every test runs against the memory backend and the real Redis."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from jararaca.backends.base import Backend, FireClaim, RunStatus
from jararaca.wire import Envelope
from tests.contract.conftest import BackendFactory

T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def env(message_id: str, payload: object = None, routing_key: str = "topic.a") -> Envelope:
    body = json.dumps(payload if payload is not None else {"id": message_id}).encode()
    return Envelope(message_id, routing_key, body, {"x-jararaca-kind": "message"})


def claim(action: str, at: datetime) -> FireClaim:
    fire_id = f"{action}@{int(at.timestamp() * 1000)}"
    return FireClaim(fire_id, action, at, env(fire_id, routing_key="jararaca.action.default"))


# -- fire claims ------------------------------------------------------------------------------


async def test_a_fire_is_claimed_once(backend: Backend) -> None:
    first = await backend.claim_fires([claim("a", T0)], now=T0, lease_until=T0 + LEASE)
    again = await backend.claim_fires(
        [claim("a", T0), claim("b", T0)], now=T0, lease_until=T0 + LEASE
    )
    assert first == [True]
    assert again == [False, True]


async def test_two_beats_racing_for_the_same_fires_claim_each_once(backend: Backend) -> None:
    claims = [claim("a", T0 + timedelta(seconds=i)) for i in range(50)]
    answers = await asyncio.gather(
        *(backend.claim_fires(claims, now=T0, lease_until=T0 + LEASE) for _ in range(4))
    )
    per_fire = [sum(a[i] for a in answers) for i in range(len(claims))]
    assert per_fire == [1] * len(claims)


async def test_last_fire_only_moves_forward(backend: Backend) -> None:
    later, earlier = T0 + timedelta(minutes=5), T0
    await backend.claim_fires([claim("a", later)], now=T0, lease_until=T0 + LEASE)
    await backend.claim_fires([claim("a", earlier)], now=T0, lease_until=T0 + LEASE)
    assert await backend.get_last_fires(["a", "never"]) == {"a": later}


async def test_claimed_fire_stays_in_flight_until_acked(backend: Backend) -> None:
    c = claim("a", T0)
    await backend.claim_fires([c], now=T0, lease_until=T0 + LEASE)
    assert await backend.next_due() == T0 + LEASE
    assert await backend.reclaim_inflight(now=T0 + LEASE / 2, lease_until=T0, limit=10) == []
    await backend.ack_inflight([c.fire_id])
    assert await backend.next_due() is None
    assert await backend.reclaim_inflight(now=T0 + 2 * LEASE, lease_until=T0, limit=10) == []


async def test_fire_of_a_dead_beat_is_reclaimed_once_after_its_lease(backend: Backend) -> None:
    c = claim("a", T0)
    await backend.claim_fires([c], now=T0, lease_until=T0 + LEASE)
    after = T0 + LEASE + timedelta(seconds=1)
    got = await backend.reclaim_inflight(now=after, lease_until=after + LEASE, limit=10)
    assert got == [c.envelope]
    assert await backend.reclaim_inflight(now=after, lease_until=after + LEASE, limit=10) == []
    assert await backend.next_due() == after + LEASE


# -- delayed queue ----------------------------------------------------------------------------


async def test_due_entries_are_claimed_in_order_and_only_when_due(backend: Backend) -> None:
    for i, seconds in enumerate([30, 10, 20]):
        m = env(f"m{i}")
        await backend.enqueue_delayed(m, T0 + timedelta(seconds=seconds), task_id=m.message_id)
    assert await backend.next_due() == T0 + timedelta(seconds=10)
    assert await backend.claim_due(now=T0 + timedelta(seconds=5), lease_until=T0, limit=10) == []
    got = await backend.claim_due(now=T0 + timedelta(seconds=25), lease_until=T0 + LEASE, limit=10)
    assert [e.message_id for e in got] == ["m1", "m2"]
    assert await backend.pending_count() == 1


async def test_claim_due_respects_the_limit(backend: Backend) -> None:
    await backend.enqueue_delayed_many([(env(f"m{i}"), T0) for i in range(25)])
    first = await backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=10)
    rest = await backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=100)
    assert len(first) == 10
    assert len(rest) == 15
    assert {e.message_id for e in first + rest} == {f"m{i}" for i in range(25)}


async def test_claimed_message_is_republished_if_not_acked(backend: Backend) -> None:
    m = env("m")
    await backend.enqueue_delayed(m, T0, task_id="m")
    [claimed] = await backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=10)
    assert (claimed.message_id, claimed.body) == (m.message_id, m.body)
    assert await backend.pending_count() == 0
    later = T0 + LEASE + timedelta(milliseconds=1)
    assert await backend.reclaim_inflight(now=later, lease_until=later + LEASE, limit=10) == [
        claimed
    ]
    await backend.ack_inflight([claimed.inflight_id])
    assert await backend.next_due() is None


async def test_concurrent_claims_never_hand_out_a_message_twice(backend: Backend) -> None:
    await backend.enqueue_delayed_many([(env(f"m{i}"), T0) for i in range(300)])
    batches = await asyncio.gather(
        *(backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=7) for _ in range(60))
    )
    ids = [e.message_id for batch in batches for e in batch]
    assert len(ids) == len(set(ids)) == 300


async def test_without_key_each_enqueue_is_its_own_entry(backend: Backend) -> None:
    await backend.enqueue_delayed(env("m1", {"n": 1}), T0, task_id="m1")
    await backend.enqueue_delayed(env("m2", {"n": 1}), T0, task_id="m2")
    assert await backend.pending_count() == 2


async def _pending_payloads(backend: Backend) -> list[object]:
    """Drain the whole queue (far in the future) and return each entry's payload."""
    got = await backend.claim_due(now=T0 + timedelta(days=1), lease_until=T0, limit=100)
    return [json.loads(e.body) for e in got]


@pytest.mark.parametrize(
    ("payload_policy", "time_policy", "second_delay", "expected_payload", "expected_delay"),
    [
        ("ignore", "replace", 60, "first", 60),
        ("replace", "replace", 60, "second", 60),
        ("ignore", "greater", 60, "first", 60),
        ("ignore", "greater", 5, "first", 30),
        ("ignore", "lesser", 5, "first", 5),
        ("ignore", "lesser", 60, "first", 30),
        ("replace", "greater", 5, "second", 30),
        ("replace", "lesser", 5, "second", 5),
    ],
)
async def test_idempotency_policies_act_on_the_pending_entry(
    backend: Backend,
    payload_policy: str,
    time_policy: str,
    second_delay: int,
    expected_payload: str,
    expected_delay: int,
) -> None:
    await backend.enqueue_delayed(
        env("m1", {"v": "first"}), T0 + timedelta(seconds=30), task_id="key"
    )
    await backend.enqueue_delayed(
        env("m2", {"v": "second"}),
        T0 + timedelta(seconds=second_delay),
        task_id="key",
        payload_policy=payload_policy,  # type: ignore[arg-type]
        time_policy=time_policy,  # type: ignore[arg-type]
    )
    assert await backend.pending_count() == 1
    assert await backend.next_due() == T0 + timedelta(seconds=expected_delay)
    assert await _pending_payloads(backend) == [{"v": expected_payload}]


async def test_claimed_envelopes_carry_the_due_instant_they_had(backend: Backend) -> None:
    m = env("m1").with_headers(due_at="2030-01-01T12:00:30.000Z")
    await backend.enqueue_delayed(m, T0 + timedelta(seconds=30), task_id="key")
    await backend.enqueue_delayed(env("m2"), T0 + timedelta(seconds=45), task_id="key")
    [got] = await backend.claim_due(now=T0 + timedelta(minutes=1), lease_until=T0, limit=10)
    assert got.message_id == "m1"
    assert got.headers["x-jararaca-due-at"] == "2030-01-01T12:00:45.000Z"


async def test_a_key_can_be_reused_once_its_message_was_claimed(backend: Backend) -> None:
    await backend.enqueue_delayed(env("m1"), T0, task_id="key")
    [first] = await backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=10)
    await backend.enqueue_delayed(env("m2"), T0 + timedelta(seconds=1), task_id="key")
    await backend.ack_inflight([first.inflight_id])
    [second] = await backend.claim_due(
        now=T0 + timedelta(seconds=1), lease_until=T0 + LEASE, limit=10
    )
    assert (first.message_id, second.message_id) == ("m1", "m2")


async def test_enqueue_wakes_listeners_only_when_the_head_gets_sooner(backend: Backend) -> None:
    woken = asyncio.Event()
    backend.add_wakeup_listener(woken)
    try:
        await backend.enqueue_delayed(env("m1"), T0 + timedelta(seconds=10), task_id="m1")
        await asyncio.wait_for(woken.wait(), 5)
        woken.clear()
        await backend.enqueue_delayed(env("m2"), T0 + timedelta(seconds=20), task_id="m2")
        await backend.enqueue_delayed(env("m3"), T0 + timedelta(seconds=5), task_id="m3")
        await asyncio.wait_for(woken.wait(), 5)
    finally:
        backend.remove_wakeup_listener(woken)
    assert await backend.next_due() == T0 + timedelta(seconds=5)


# -- runs ------------------------------------------------------------------------------------


async def test_a_fire_starts_once_and_then_is_done(backend: Backend) -> None:
    start = await backend.begin_run(
        "a@1", overlap_key=None, owner="w1", now=T0, lease_until=T0 + LEASE
    )
    busy = await backend.begin_run(
        "a@1", overlap_key=None, owner="w2", now=T0, lease_until=T0 + LEASE
    )
    await backend.finish_run("a@1", overlap_key=None, owner="w1", now=T0)
    done = await backend.begin_run(
        "a@1", overlap_key=None, owner="w2", now=T0 + LEASE * 2, lease_until=T0 + LEASE * 3
    )
    assert (start.status, start.attempt) == (RunStatus.STARTED, 1)
    assert (busy.status, busy.busy_until) == (RunStatus.BUSY, T0 + LEASE)
    assert done.status is RunStatus.DONE


async def test_a_dead_workers_fire_is_taken_over_after_its_lease(backend: Backend) -> None:
    await backend.begin_run("a@1", overlap_key="a", owner="w1", now=T0, lease_until=T0 + LEASE)
    later = T0 + LEASE + timedelta(seconds=1)
    again = await backend.begin_run(
        "a@1", overlap_key="a", owner="w2", now=later, lease_until=later + LEASE
    )
    assert (again.status, again.attempt) == (RunStatus.STARTED, 2)
    assert not await backend.renew_run("a@1", overlap_key="a", owner="w1", lease_until=later)


async def test_a_second_delivery_to_the_same_worker_is_busy_not_started(backend: Backend) -> None:
    await backend.begin_run("a@1", overlap_key=None, owner="w1", now=T0, lease_until=T0 + LEASE)
    again = await backend.begin_run(
        "a@1", overlap_key=None, owner="w1", now=T0, lease_until=T0 + LEASE
    )
    assert (again.status, again.busy_until) == (RunStatus.BUSY, T0 + LEASE)


async def test_a_slow_old_owner_does_not_end_the_new_owners_run(backend: Backend) -> None:
    await backend.begin_run("a@1", overlap_key=None, owner="w1", now=T0, lease_until=T0 + LEASE)
    later = T0 + LEASE + timedelta(seconds=1)
    await backend.begin_run(
        "a@1", overlap_key=None, owner="w2", now=later, lease_until=later + LEASE
    )
    await backend.finish_run("a@1", overlap_key=None, owner="w1", now=later)
    assert await backend.renew_run(
        "a@1", overlap_key=None, owner="w2", lease_until=later + 2 * LEASE
    )


async def test_retries_of_one_message_for_two_handlers_both_survive_a_dead_beat(
    backend: Backend,
) -> None:
    for handler in ("h1", "h2"):
        retry = env("m", routing_key=f"jararaca.retry.{handler}")
        await backend.enqueue_delayed(retry, T0, task_id=f"retry:{handler}:m:2")
    claimed = await backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=10)
    later = T0 + LEASE + timedelta(seconds=1)
    again = await backend.reclaim_inflight(now=later, lease_until=later + LEASE, limit=10)
    assert len(claimed) == 2
    assert sorted(e.routing_key for e in again) == ["jararaca.retry.h1", "jararaca.retry.h2"]


async def test_overlap_skips_a_second_fire_while_the_first_runs(backend: Backend) -> None:
    await backend.begin_run("a@1", overlap_key="a", owner="w1", now=T0, lease_until=T0 + LEASE)
    t1 = T0 + timedelta(seconds=10)
    second = await backend.begin_run(
        "a@2", overlap_key="a", owner="w2", now=t1, lease_until=t1 + LEASE
    )
    redelivered = await backend.begin_run(
        "a@2", overlap_key="a", owner="w2", now=t1, lease_until=t1 + LEASE
    )
    assert await backend.is_running("a", now=t1)
    await backend.finish_run("a@1", overlap_key="a", owner="w1", now=t1)
    assert not await backend.is_running("a", now=t1)
    third = await backend.begin_run(
        "a@3", overlap_key="a", owner="w2", now=t1, lease_until=t1 + LEASE
    )
    assert second.status is RunStatus.OVERLAP
    assert redelivered.status is RunStatus.DONE
    assert third.status is RunStatus.STARTED


async def test_a_catch_up_fire_blocked_by_overlap_can_try_again(backend: Backend) -> None:
    await backend.begin_run("a@1", overlap_key="a", owner="w1", now=T0, lease_until=T0 + LEASE)
    waiting = await backend.begin_run(
        "a@2", overlap_key="a", owner="w2", now=T0, lease_until=T0 + LEASE, skip_on_overlap=False
    )
    await backend.finish_run("a@1", overlap_key="a", owner="w1", now=T0)
    again = await backend.begin_run(
        "a@2", overlap_key="a", owner="w2", now=T0, lease_until=T0 + LEASE, skip_on_overlap=False
    )
    assert (waiting.status, again.status) == (RunStatus.OVERLAP, RunStatus.STARTED)


async def test_renewing_keeps_the_overlap_lease_alive(backend: Backend) -> None:
    await backend.begin_run("a@1", overlap_key="a", owner="w1", now=T0, lease_until=T0 + LEASE)
    assert await backend.renew_run("a@1", overlap_key="a", owner="w1", lease_until=T0 + 3 * LEASE)
    t = T0 + 2 * LEASE
    assert await backend.is_running("a", now=t)
    blocked = await backend.begin_run(
        "a@2", overlap_key="a", owner="w2", now=t, lease_until=t + LEASE
    )
    assert blocked.status is RunStatus.OVERLAP


async def test_an_expired_overlap_lease_no_longer_blocks(backend: Backend) -> None:
    await backend.begin_run("a@1", overlap_key="a", owner="w1", now=T0, lease_until=T0 + LEASE)
    t = T0 + 2 * LEASE
    nxt = await backend.begin_run("a@2", overlap_key="a", owner="w2", now=t, lease_until=t + LEASE)
    assert nxt.status is RunStatus.STARTED


# -- isolation -------------------------------------------------------------------------------


async def test_namespaces_never_see_each_other(make_backend: BackendFactory) -> None:
    one, two = make_backend("one"), make_backend("two")
    await one.connect()
    await two.connect()
    await one.claim_fires([claim("a", T0)], now=T0, lease_until=T0 + LEASE)
    await one.enqueue_delayed(env("m"), T0, task_id="k")
    await one.begin_run("a@1", overlap_key="a", owner="w", now=T0, lease_until=T0 + LEASE)
    assert await two.get_last_fires(["a"]) == {}
    assert await two.claim_fires([claim("a", T0)], now=T0, lease_until=T0 + LEASE) == [True]
    assert await two.claim_due(now=T0, lease_until=T0 + LEASE, limit=10) == []
    assert not await two.is_running("a", now=T0)
    assert await one.pending_count() == 1


async def test_state_is_shared_between_clients_of_one_namespace(
    make_backend: BackendFactory,
) -> None:
    one, two = make_backend("same"), make_backend("same")
    await one.connect()
    await two.connect()
    await one.enqueue_delayed(env("m"), T0, task_id="k")
    assert [e.message_id for e in await two.claim_due(now=T0, lease_until=T0, limit=10)] == ["m"]
