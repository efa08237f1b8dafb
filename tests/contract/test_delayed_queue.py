"""The DelayedQueue contract, against the memory backend and the real Redis."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from jararaca.backends.base import Backend, Claimed
from jararaca.policies import PayloadPolicy, TimePolicy
from jararaca.wire import Envelope
from tests.contract.conftest import LEASE, T0, env


async def test_due_entries_are_claimed_in_order_and_only_when_due(backend: Backend) -> None:
    for i, seconds in enumerate([30, 10, 20]):
        m = env(f"m{i}")
        await backend.enqueue_delayed(m, T0 + timedelta(seconds=seconds), task_id=m.message_id)
    assert await backend.next_due() == T0 + timedelta(seconds=10)
    assert await backend.claim_due(now=T0 + timedelta(seconds=5), lease_until=T0, limit=10) == []
    got = await backend.claim_due(now=T0 + timedelta(seconds=25), lease_until=T0 + LEASE, limit=10)
    assert [c.envelope.message_id for c in got] == ["m1", "m2"]
    assert [c.due_at for c in got] == [T0 + timedelta(seconds=10), T0 + timedelta(seconds=20)]
    assert await backend.pending_count() == 1


async def test_an_entry_due_exactly_now_is_claimed(backend: Backend) -> None:
    await backend.enqueue_delayed(env("m"), T0, task_id="m")
    [got] = await backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=10)
    assert got.due_at == T0


async def test_claim_due_respects_the_limit(backend: Backend) -> None:
    await backend.enqueue_delayed_many([(env(f"m{i}"), T0) for i in range(25)])
    first = await backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=10)
    rest = await backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=100)
    assert len(first) == 10
    assert len(rest) == 15
    assert {c.envelope.message_id for c in first + rest} == {f"m{i}" for i in range(25)}


async def test_entries_sharing_instants_come_out_by_instant_moved_and_cancelled_ones_once(
    backend: Backend,
) -> None:
    # Bursts share an instant; a key moved to another instant, or cancelled, leaves its old
    # place behind, which must neither come out again nor hide the entries after it.
    instants = [T0 + timedelta(seconds=s) for s in (3, 1, 2)]
    await backend.enqueue_delayed_many(
        [(env(f"m{at}-{i}"), instants[at]) for i in range(4) for at in range(3)]
    )
    await backend.enqueue_delayed(env("moved"), instants[0], task_id="moved")
    await backend.enqueue_delayed(env("moved"), instants[1], task_id="moved")
    await backend.enqueue_delayed(env("dropped"), instants[2], task_id="dropped")
    assert await backend.cancel_delayed(task_id="dropped") is True
    assert await backend.next_due() == instants[1]
    first = await backend.claim_due(now=instants[1], lease_until=T0 + LEASE, limit=100)
    rest = await _drain(backend)
    assert {c.envelope.message_id for c in first} == {f"m1-{i}" for i in range(4)} | {"moved"}
    assert [c.due_at for c in rest] == [instants[2]] * 4 + [instants[0]] * 4
    assert {c.envelope.message_id for c in rest} == {
        f"m{at}-{i}" for i in range(4) for at in (0, 2)
    }
    assert await backend.next_due() is not None  # still in flight until acked
    assert await backend.pending_count() == 0


async def test_enqueue_many_keys_each_entry_by_its_message_id(backend: Backend) -> None:
    early, late = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)
    await backend.enqueue_delayed_many([(env("m1"), late), (env("m2"), early)])
    await backend.enqueue_delayed(
        env("m1", {"v": 2}), early, task_id="m1", payload_policy="replace"
    )
    assert await backend.pending_count() == 2
    got = await backend.claim_due(now=late, lease_until=late + LEASE, limit=10)
    assert {c.envelope.message_id: c.due_at for c in got} == {"m1": early, "m2": early}
    assert {c.envelope.message_id: json.loads(c.envelope.body) for c in got}["m1"] == {"v": 2}


async def test_text_beyond_ascii_comes_back_byte_for_byte(backend: Backend) -> None:
    # Envelopes are stored as JSON written with UTF-8 text, not \u escapes: what is claimed
    # must be exactly what was enqueued, accents, emoji and line separators included.
    body = '{"city":"São Paulo","mark":"✓ 🐍","sep":"a\u2028b","quote":"\\"x\\""}'.encode()
    headers = {"x-jararaca-kind": "message", "x-jararaca-topic": "cidades.são-paulo"}
    one = Envelope("m-one", "topic.ã", body, headers)
    many = Envelope("m-many", "topic.ã", body, headers)
    await backend.enqueue_delayed(one, T0, task_id="m-one")
    await backend.enqueue_delayed_many([(many, T0)])
    got = await backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=10)
    assert sorted((c.envelope for c in got), key=lambda e: e.message_id) == [many, one]
    assert json.loads(got[0].envelope.body)["city"] == "São Paulo"


async def test_enqueue_many_of_nothing_is_harmless(backend: Backend) -> None:
    await backend.enqueue_delayed_many([])
    assert await backend.pending_count() == 0
    assert await backend.next_due() is None


async def test_concurrent_claims_never_hand_out_a_message_twice(backend: Backend) -> None:
    await backend.enqueue_delayed_many([(env(f"m{i}"), T0) for i in range(300)])
    batches = await asyncio.gather(
        *(backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=7) for _ in range(60))
    )
    ids = [c.envelope.message_id for batch in batches for c in batch]
    assert len(ids) == len(set(ids)) == 300


async def test_without_key_each_enqueue_is_its_own_entry(backend: Backend) -> None:
    await backend.enqueue_delayed(env("m1", {"n": 1}), T0, task_id="m1")
    await backend.enqueue_delayed(env("m2", {"n": 1}), T0, task_id="m2")
    assert await backend.pending_count() == 2


async def _drain(backend: Backend) -> list[Claimed]:
    """Claim the whole queue (far in the future)."""
    return await backend.claim_due(now=T0 + timedelta(days=1), lease_until=T0, limit=100)


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
    payload_policy: PayloadPolicy,
    time_policy: TimePolicy,
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
        payload_policy=payload_policy,
        time_policy=time_policy,
    )
    assert await backend.pending_count() == 1
    assert await backend.next_due() == T0 + timedelta(seconds=expected_delay)
    [got] = await _drain(backend)
    assert json.loads(got.envelope.body) == {"v": expected_payload}
    assert got.due_at == T0 + timedelta(seconds=expected_delay)


@pytest.mark.parametrize(
    ("time_policy", "second_delay", "expected_delay"),
    [
        ("replace", 45, 45),
        ("replace", 15, 15),
        ("greater", 45, 45),
        ("greater", 15, 30),
        ("lesser", 15, 15),
        ("lesser", 45, 30),
    ],
)
async def test_claimed_entries_carry_the_due_instant_as_the_time_policy_left_it(
    backend: Backend, time_policy: TimePolicy, second_delay: int, expected_delay: int
) -> None:
    # The envelope says it is due at 30 s; storage must not rewrite it, only report the instant.
    first = env("m1").with_headers(due_at="2030-01-01T12:00:30.000Z", custom="kept")
    await backend.enqueue_delayed(first, T0 + timedelta(seconds=30), task_id="key")
    second_due = T0 + timedelta(seconds=second_delay)
    await backend.enqueue_delayed(env("m2"), second_due, task_id="key", time_policy=time_policy)
    [got] = await backend.claim_due(now=T0 + timedelta(minutes=1), lease_until=T0, limit=10)
    assert got.due_at == T0 + timedelta(seconds=expected_delay)
    assert got.envelope == first
    assert dict(got.envelope.headers) == {
        "x-jararaca-kind": "message",
        "x-jararaca-due-at": "2030-01-01T12:00:30.000Z",
        "x-jararaca-custom": "kept",
    }


async def test_storage_stamps_no_header(backend: Backend) -> None:
    bare = Envelope("m", "topic.a", b"{}", {})
    await backend.enqueue_delayed(bare, T0, task_id="k")
    await backend.enqueue_delayed_many([(Envelope("n", "topic.a", b"[]", {}), T0)])
    claimed = await backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=10)
    assert sorted(c.envelope.message_id for c in claimed) == ["m", "n"]
    assert [dict(c.envelope.headers) for c in claimed] == [{}, {}]
    later = T0 + LEASE + timedelta(seconds=1)
    again = await backend.reclaim_inflight(now=later, lease_until=later + LEASE, limit=10)
    assert [dict(c.envelope.headers) for c in again] == [{}, {}]


async def test_a_key_can_be_reused_once_its_message_was_claimed(backend: Backend) -> None:
    await backend.enqueue_delayed(env("m1"), T0, task_id="key")
    [first] = await backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=10)
    await backend.enqueue_delayed(env("m2"), T0 + timedelta(seconds=1), task_id="key")
    await backend.ack_inflight([first.inflight_id])
    [second] = await backend.claim_due(
        now=T0 + timedelta(seconds=1), lease_until=T0 + LEASE, limit=10
    )
    assert (first.envelope.message_id, second.envelope.message_id) == ("m1", "m2")
    assert first.inflight_id != second.inflight_id


async def test_a_reused_key_does_not_evict_its_previous_message_from_flight(
    backend: Backend,
) -> None:
    await backend.enqueue_delayed(env("m1"), T0, task_id="key")
    [first] = await backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=10)
    await backend.enqueue_delayed(env("m2"), T0, task_id="key")
    [second] = await backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=10)
    later = T0 + LEASE + timedelta(seconds=1)
    again = await backend.reclaim_inflight(now=later, lease_until=later + LEASE, limit=10)
    assert sorted(c.envelope.message_id for c in again) == ["m1", "m2"]
    assert {c.inflight_id for c in again} == {first.inflight_id, second.inflight_id}


async def test_next_due_is_the_sooner_of_pending_and_in_flight(backend: Backend) -> None:
    assert await backend.next_due() is None
    await backend.enqueue_delayed(env("m1"), T0, task_id="m1")
    await backend.enqueue_delayed(env("m2"), T0 + 2 * LEASE, task_id="m2")
    assert await backend.next_due() == T0
    [claimed] = await backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=10)
    assert await backend.next_due() == T0 + LEASE  # the in-flight lease end
    await backend.ack_inflight([claimed.inflight_id])
    assert await backend.next_due() == T0 + 2 * LEASE


async def test_an_enqueue_that_makes_the_head_sooner_wakes_listeners(backend: Backend) -> None:
    # Only the Redis test (tests/integration) can tell that a later enqueue stays silent: a
    # listener may be woken spuriously once when it subscribes, so here only "sooner wakes".
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


async def test_a_removed_listener_is_not_woken(backend: Backend) -> None:
    kept, removed = asyncio.Event(), asyncio.Event()
    backend.add_wakeup_listener(kept)
    backend.add_wakeup_listener(removed)
    backend.remove_wakeup_listener(removed)
    try:
        await backend.enqueue_delayed(env("m1"), T0, task_id="m1")
        await asyncio.wait_for(kept.wait(), 5)
    finally:
        backend.remove_wakeup_listener(kept)
    assert not removed.is_set()
