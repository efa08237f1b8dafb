"""The InFlight contract (claimed, not yet confirmed envelopes), against the memory backend and
the real Redis."""

from __future__ import annotations

from datetime import timedelta

from jararaca.backends.base import Backend, Claimed
from tests.contract.conftest import LEASE, T0, claim, env


async def test_claimed_fire_stays_in_flight_until_acked(backend: Backend) -> None:
    c = claim("a", T0)
    await backend.claim_fires([c], now=T0, lease_until=T0 + LEASE)
    assert await backend.next_due() == T0 + LEASE
    assert await backend.reclaim_inflight(now=T0 + LEASE / 2, lease_until=T0, limit=10) == []
    await backend.ack_inflight([c.fire_id])
    assert await backend.next_due() is None
    assert await backend.reclaim_inflight(now=T0 + 2 * LEASE, lease_until=T0, limit=10) == []


async def test_a_lease_ending_exactly_now_is_not_reclaimed_yet(backend: Backend) -> None:
    c = claim("a", T0)
    await backend.claim_fires([c], now=T0, lease_until=T0 + LEASE)
    end = T0 + LEASE
    assert await backend.reclaim_inflight(now=end, lease_until=end + LEASE, limit=10) == []
    after = end + timedelta(milliseconds=1)
    got = await backend.reclaim_inflight(now=after, lease_until=after + LEASE, limit=10)
    assert [g.inflight_id for g in got] == [c.fire_id]


async def test_fire_of_a_dead_beat_is_reclaimed_once_after_its_lease(backend: Backend) -> None:
    c = claim("a", T0)
    await backend.claim_fires([c], now=T0, lease_until=T0 + LEASE)
    after = T0 + LEASE + timedelta(seconds=1)
    got = await backend.reclaim_inflight(now=after, lease_until=after + LEASE, limit=10)
    assert got == [Claimed(c.fire_id, c.envelope, None)]
    assert await backend.reclaim_inflight(now=after, lease_until=after + LEASE, limit=10) == []
    assert await backend.next_due() == after + LEASE


async def test_reclaim_respects_the_limit_earliest_lease_first(backend: Backend) -> None:
    claims = [claim("a", T0 + timedelta(seconds=i)) for i in range(5)]
    for i, c in enumerate(claims):
        await backend.claim_fires([c], now=T0, lease_until=T0 + timedelta(seconds=i + 1))
    after = T0 + timedelta(minutes=1)
    first = await backend.reclaim_inflight(now=after, lease_until=after + LEASE, limit=2)
    rest = await backend.reclaim_inflight(now=after, lease_until=after + LEASE, limit=10)
    assert [g.inflight_id for g in first] == [c.fire_id for c in claims[:2]]
    assert sorted(g.inflight_id for g in rest) == sorted(c.fire_id for c in claims[2:])


async def test_claimed_message_is_republished_if_not_acked(backend: Backend) -> None:
    m = env("m")
    await backend.enqueue_delayed(m, T0, task_id="m")
    [claimed] = await backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=10)
    assert claimed.envelope == m
    assert await backend.pending_count() == 0
    later = T0 + LEASE + timedelta(milliseconds=1)
    assert await backend.reclaim_inflight(now=later, lease_until=later + LEASE, limit=10) == [
        claimed
    ]
    await backend.ack_inflight([claimed.inflight_id])
    assert await backend.next_due() is None


async def test_a_reclaimed_delayed_entry_still_carries_its_due_instant(backend: Backend) -> None:
    first_due = T0 + timedelta(seconds=10)
    await backend.enqueue_delayed(env("m"), first_due, task_id="key")
    moved = T0 + timedelta(seconds=40)
    await backend.enqueue_delayed(env("m2"), moved, task_id="key", time_policy="greater")
    [claimed] = await backend.claim_due(now=moved, lease_until=moved + LEASE, limit=10)
    later = moved + LEASE + timedelta(seconds=1)
    [again] = await backend.reclaim_inflight(now=later, lease_until=later + LEASE, limit=10)
    assert again.due_at == moved
    assert again == claimed == Claimed(claimed.inflight_id, env("m"), moved)
    # Reclaimed a second time (the republishing beat died too): still the same instant.
    latest = later + LEASE + timedelta(seconds=1)
    [third] = await backend.reclaim_inflight(now=latest, lease_until=latest + LEASE, limit=10)
    assert third.due_at == moved


async def test_ack_forgets_only_the_given_entries(backend: Backend) -> None:
    await backend.enqueue_delayed_many([(env("m1"), T0), (env("m2"), T0)])
    claimed = await backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=10)
    by_id = {c.envelope.message_id: c for c in claimed}
    await backend.ack_inflight([by_id["m1"].inflight_id, "never-claimed"])
    later = T0 + LEASE + timedelta(seconds=1)
    again = await backend.reclaim_inflight(now=later, lease_until=later + LEASE, limit=10)
    assert again == [by_id["m2"]]


async def test_acking_nothing_is_harmless(backend: Backend) -> None:
    c = claim("a", T0)
    await backend.claim_fires([c], now=T0, lease_until=T0 + LEASE)
    await backend.ack_inflight([])
    assert await backend.next_due() == T0 + LEASE


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
    assert len({c.inflight_id for c in claimed}) == 2
    assert sorted(c.envelope.routing_key for c in again) == [
        "jararaca.retry.h1",
        "jararaca.retry.h2",
    ]
