"""The Admin and Connection contracts (counts, liveness, wiping a namespace, what a backend says
about itself, namespaces), and the idempotency options checked once at the API: all against the
memory backend and the real Redis."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

import pytest

from jararaca.backends.base import Backend, ClaimResult, RunStatus
from jararaca.brokers.memory import MemoryBroker
from jararaca.errors import ConfigError
from jararaca.messagebus.message import Message
from jararaca.messagebus.publisher import Publisher
from tests.contract.conftest import LEASE, T0, BackendFactory, claim, env


class Reminder(Message):
    MESSAGE_TOPIC: ClassVar[str] = "reminder.due"

    text: str


# -- info -------------------------------------------------------------------------------------


async def test_info_names_the_kind_and_whether_it_lives_in_process(backend: Backend) -> None:
    info = await backend.info()
    kind = type(backend).__module__.rsplit(".", 1)[-1]
    assert kind in ("memory", "redis", "sqlite")
    assert info.kind == kind
    assert info.in_process is (kind == "memory")
    if kind == "memory":
        assert not info.persists  # nothing survives the process
        assert not info.evicts_keys


# -- counts and liveness ----------------------------------------------------------------------


async def test_pending_count_counts_waiting_entries_not_in_flight_ones(backend: Backend) -> None:
    assert await backend.pending_count() == 0
    await backend.enqueue_delayed(env("m1"), T0, task_id="m1")
    await backend.enqueue_delayed(env("m2"), T0 + LEASE, task_id="m2")
    await backend.enqueue_delayed(env("m3"), T0 + LEASE, task_id="m2")  # same task: one entry
    assert await backend.pending_count() == 2
    await backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=10)
    assert await backend.pending_count() == 1


async def test_is_running_follows_the_overlap_lease(backend: Backend) -> None:
    assert not await backend.is_running("a", now=T0)
    await backend.begin_run("a@1", overlap_key="a", owner="w1", now=T0, lease_until=T0 + LEASE)
    await backend.begin_run("b@1", overlap_key=None, owner="w1", now=T0, lease_until=T0 + LEASE)
    assert await backend.is_running("a", now=T0 + LEASE - timedelta(milliseconds=1))
    assert not await backend.is_running("a", now=T0 + LEASE)
    assert not await backend.is_running("b", now=T0)  # no overlap key, no mark


# -- delete_namespace -------------------------------------------------------------------------


async def test_delete_namespace_forgets_everything(backend: Backend) -> None:
    c = claim("a", T0)
    await backend.claim_fires([c], now=T0, lease_until=T0 + LEASE)
    await backend.enqueue_delayed(env("m1"), T0, task_id="m1")
    await backend.enqueue_delayed(env("m2"), T0 + LEASE, task_id="m2")
    await backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=1)
    await backend.begin_run("a@1", overlap_key="a", owner="w1", now=T0, lease_until=T0 + LEASE)
    await backend.begin_run("b@1", overlap_key=None, owner="w1", now=T0, lease_until=T0 + LEASE)
    await backend.finish_run("b@1", overlap_key=None, owner="w1", now=T0)
    assert await backend.pending_count() == 1

    await backend.delete_namespace()

    assert await backend.pending_count() == 0
    assert await backend.next_due() is None  # nothing pending, nothing in flight
    assert await backend.get_last_fires(["a"]) == {}
    assert not await backend.is_running("a", now=T0)
    # The fire claim is forgotten: the fire can be claimed again (and is in flight again).
    assert await backend.claim_fires([c], now=T0, lease_until=T0 + LEASE) == [ClaimResult.CLAIMED]
    assert await backend.get_last_fires(["a"]) == {"a": T0}
    assert await backend.next_due() == T0 + LEASE
    # Run records are forgotten: the done run and the running one start afresh.
    done = await backend.begin_run(
        "b@1", overlap_key=None, owner="w2", now=T0, lease_until=T0 + LEASE
    )
    running = await backend.begin_run(
        "a@1", overlap_key="a", owner="w2", now=T0, lease_until=T0 + LEASE
    )
    assert (done.status, done.attempt) == (RunStatus.STARTED, 1)
    assert (running.status, running.attempt) == (RunStatus.STARTED, 1)


async def test_delete_namespace_of_an_empty_namespace_is_harmless(backend: Backend) -> None:
    await backend.delete_namespace()
    await backend.delete_namespace()
    await backend.enqueue_delayed(env("m"), T0, task_id="m")
    assert await backend.pending_count() == 1


async def test_delete_namespace_is_seen_by_every_client_of_the_namespace(
    make_backend: BackendFactory,
) -> None:
    one, two = make_backend("same"), make_backend("same")
    await one.connect()
    await two.connect()
    await one.enqueue_delayed(env("m1"), T0, task_id="m1")
    await one.claim_fires([claim("a", T0)], now=T0, lease_until=T0 + LEASE)
    await two.delete_namespace()
    assert await one.pending_count() == 0
    assert await one.claim_fires([claim("a", T0)], now=T0, lease_until=T0 + LEASE) == [
        ClaimResult.CLAIMED
    ]
    await one.enqueue_delayed(env("m2"), T0, task_id="m2")
    assert await two.pending_count() == 1


async def test_delete_namespace_leaves_other_namespaces_alone(
    make_backend: BackendFactory,
) -> None:
    one, two = make_backend("one"), make_backend("two")
    await one.connect()
    await two.connect()
    await one.enqueue_delayed(env("m"), T0, task_id="m")
    await two.enqueue_delayed(env("m"), T0, task_id="m")
    await two.delete_namespace()
    assert (await one.pending_count(), await two.pending_count()) == (1, 0)


# -- namespaces -------------------------------------------------------------------------------


async def test_namespaces_never_see_each_other(make_backend: BackendFactory) -> None:
    one, two = make_backend("one"), make_backend("two")
    await one.connect()
    await two.connect()
    await one.claim_fires([claim("a", T0)], now=T0, lease_until=T0 + LEASE)
    await one.enqueue_delayed(env("m"), T0, task_id="k")
    await one.begin_run("a@1", overlap_key="a", owner="w", now=T0, lease_until=T0 + LEASE)
    assert await two.get_last_fires(["a"]) == {}
    assert await two.claim_fires([claim("a", T0)], now=T0, lease_until=T0 + LEASE) == [
        ClaimResult.CLAIMED
    ]
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
    got = await two.claim_due(now=T0, lease_until=T0, limit=10)
    assert [c.envelope.message_id for c in got] == ["m"]


# -- idempotency options, validated once by the publisher ---------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"payload_policy": "merge"}, "'merge'"),
        ({"time_policy": "later"}, "'later'"),
        ({"payload_policy": "REPLACE"}, "'REPLACE'"),
        ({"time_policy": None}, "None"),
        ({"idempotency_key": ""}, "''"),
    ],
)
async def test_bad_idempotency_options_fail_alike_and_enqueue_nothing(
    backend: Backend, options: dict[str, Any], named: str
) -> None:
    publisher = Publisher(backend, MemoryBroker("contract", namespace=backend.namespace))
    options = {"idempotency_key": "k", **options}
    with pytest.raises(ConfigError, match=named) as delaying:
        await publisher.delay(Reminder(text="hi"), 10, **options)
    with pytest.raises(ConfigError, match=named) as scheduling:
        await publisher.schedule(Reminder(text="hi"), T0, **options)
    assert str(delaying.value) == str(scheduling.value)
    assert await backend.pending_count() == 0
    assert await backend.next_due() is None


async def test_good_idempotency_options_reach_the_backend(backend: Backend) -> None:
    publisher = Publisher(backend, MemoryBroker("contract", namespace=backend.namespace))
    await publisher.delay(Reminder(text="one"), 10, idempotency_key="k", payload_policy="replace")
    await publisher.delay(Reminder(text="two"), 20, idempotency_key="k", payload_policy="replace")
    assert await backend.pending_count() == 1
