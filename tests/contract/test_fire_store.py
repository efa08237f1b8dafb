"""The FireStore contract (schedule state), against the memory backend and the real Redis."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from jararaca.backends.base import Backend, Claimed, ClaimResult
from tests.contract.conftest import LEASE, T0, claim


async def test_a_fire_is_claimed_once(backend: Backend) -> None:
    first = await backend.claim_fires([claim("a", T0)], now=T0, lease_until=T0 + LEASE)
    again = await backend.claim_fires(
        [claim("a", T0), claim("b", T0)], now=T0, lease_until=T0 + LEASE
    )
    assert first == [ClaimResult.CLAIMED]
    assert again == [ClaimResult.TAKEN, ClaimResult.CLAIMED]


async def test_a_claim_is_remembered_for_at_least_an_hour(backend: Backend) -> None:
    await backend.claim_fires([claim("a", T0)], now=T0, lease_until=T0 + LEASE)
    later = T0 + timedelta(minutes=59)
    assert await backend.claim_fires([claim("a", T0)], now=later, lease_until=later) == [
        ClaimResult.TAKEN
    ]


async def test_claiming_nothing_answers_nothing(backend: Backend) -> None:
    assert await backend.claim_fires([], now=T0, lease_until=T0 + LEASE) == []
    assert await backend.get_last_fires([]) == {}
    assert await backend.next_due() is None


async def test_two_beats_racing_for_the_same_fires_claim_each_once(backend: Backend) -> None:
    claims = [claim("a", T0 + timedelta(seconds=i)) for i in range(50)]
    answers = await asyncio.gather(
        *(backend.claim_fires(claims, now=T0, lease_until=T0 + LEASE) for _ in range(4))
    )
    per_fire = [sum(a[i] is ClaimResult.CLAIMED for a in answers) for i in range(len(claims))]
    assert per_fire == [1] * len(claims)


async def test_last_fire_only_moves_forward(backend: Backend) -> None:
    later, earlier = T0 + timedelta(minutes=5), T0
    await backend.claim_fires([claim("a", later)], now=T0, lease_until=T0 + LEASE)
    await backend.claim_fires([claim("a", earlier)], now=T0, lease_until=T0 + LEASE)
    assert await backend.get_last_fires(["a", "never"]) == {"a": later}


async def test_last_fires_are_kept_per_action(backend: Backend) -> None:
    a_at, b_at = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)
    await backend.claim_fires([claim("a", a_at), claim("b", b_at)], now=T0, lease_until=T0)
    assert await backend.get_last_fires(["b", "a"]) == {"a": a_at, "b": b_at}


async def test_a_claimed_fire_is_in_flight_under_its_fire_id_without_a_due_instant(
    backend: Backend,
) -> None:
    c = claim("a", T0)
    await backend.claim_fires([c], now=T0, lease_until=T0 + LEASE)
    after = T0 + LEASE + timedelta(milliseconds=1)
    got = await backend.reclaim_inflight(now=after, lease_until=after + LEASE, limit=10)
    assert got == [Claimed(c.fire_id, c.envelope, None)]
    assert got[0].envelope.headers == {"x-jararaca-kind": "message"}  # nothing stamped


async def test_a_fire_refused_as_claimed_before_is_not_put_in_flight_again(
    backend: Backend,
) -> None:
    c = claim("a", T0)
    await backend.claim_fires([c], now=T0, lease_until=T0 + LEASE)
    await backend.ack_inflight([c.fire_id])
    assert await backend.claim_fires([c], now=T0, lease_until=T0 + LEASE) == [ClaimResult.TAKEN]
    assert await backend.next_due() is None
