"""Redis-specific behaviour of the Redis backend, against the real Redis on 127.0.0.1.

The shared contract (tests/contract) proves it behaves like the memory backend; these tests prove
what only Redis has: key layout, the script cache, pub/sub across clients, races between
clients, server configuration and connection errors.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from jararaca.backends.base import (
    REMEMBER_DONE,
    Backend,
    Claimed,
    ClaimResult,
    FireClaim,
    RunStatus,
)
from jararaca.backends.redis import FIRE_CLAIM_TTL_MS, RedisBackend
from jararaca.clock import epoch_ms
from jararaca.errors import BackendError, ConfigError, CredentialsError
from jararaca.wire import Envelope
from tests.services import REDIS_URL, require_redis

DONE_RUN_TTL_MS = round(REMEMBER_DONE.total_seconds() * 1000)

pytestmark = pytest.mark.integration

T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
WAIT = 10  # seconds: the bound of every wait for an event

Factory = Callable[..., Awaitable[RedisBackend]]


def env(message_id: str, payload: object = None) -> Envelope:
    body = json.dumps(payload if payload is not None else {"id": message_id}).encode()
    return Envelope(message_id, "topic.a", body, {"x-jararaca-kind": "message"})


def claim(action: str, at: datetime) -> FireClaim:
    fire_id = f"{action}@{epoch_ms(at)}"
    return FireClaim(fire_id, action, at, env(fire_id))


@pytest.fixture(autouse=True)
def _redis_is_up() -> None:
    require_redis()


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
async def make(tag: str) -> AsyncIterator[Factory]:
    """Builds connected backends of namespace ``test-<tag>-<suffix>``, deleted afterwards."""
    made: list[RedisBackend] = []

    async def build(suffix: str = "main", url: str = REDIS_URL) -> RedisBackend:
        backend = RedisBackend(url, namespace=f"test-{tag}-{suffix}")
        made.append(backend)
        await backend.connect()
        return backend

    yield build
    for backend in made:
        await backend.connect()  # a test may have closed it: a closed backend refuses calls
        await backend.delete_namespace()
        await backend.close()


@pytest.fixture
async def admin() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def keys_with(admin: aioredis.Redis, text: str) -> list[str]:
    return sorted([k.decode() async for k in admin.scan_iter(match=f"*{text}*", count=1000)])


async def wait_for(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), WAIT)


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait (at most ``WAIT`` seconds) until ``check`` answers True."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not await check():
        if loop.time() > deadline:
            pytest.fail(f"gave up after {WAIT} s waiting for {what}")
        await asyncio.sleep(0.02)


# -- key layout -------------------------------------------------------------------------------


async def test_every_key_carries_the_namespace_prefix_in_braces(
    make: Factory, admin: aioredis.Redis, tag: str
) -> None:
    backend: Backend = await make()  # also checks, for mypy, that it satisfies the protocol
    assert isinstance(backend, RedisBackend)
    await backend.claim_fires([claim("a", T0)], now=T0, lease_until=T0 + LEASE)
    await backend.enqueue_delayed(env("m1"), T0, task_id="k{1}")
    await backend.enqueue_delayed(env("m2"), T0 + LEASE, task_id="m2")
    await backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=10)
    await backend.begin_run("a@1", overlap_key="a{x}", owner="w", now=T0, lease_until=T0 + LEASE)
    await backend.begin_run("a@2", overlap_key=None, owner="w", now=T0, lease_until=T0 + LEASE)

    prefix = f"jararaca:{{test-{tag}-main}}:"
    keys = await keys_with(admin, tag)
    assert keys == sorted(
        prefix + suffix
        for suffix in (
            "claims",
            "last",
            "inflight",
            "inflight:env",
            "delayed",
            "delayed:env",
            "run:a@1",
            "run:a@2",
            "overlap:a{x}",
        )
    )
    # Redis Cluster hashes only what is between the first "{" and the next "}": one slot.
    assert {k[k.index("{") + 1 : k.index("}")] for k in keys} == {f"test-{tag}-main"}

    await backend.delete_namespace()
    assert await keys_with(admin, tag) == []


async def test_a_namespace_with_braces_is_refused() -> None:
    with pytest.raises(ConfigError, match="braces"):
        RedisBackend(REDIS_URL, namespace="app}x")


async def test_fire_claims_are_trimmed_and_expire(make: Factory, admin: aioredis.Redis) -> None:
    backend = await make()
    await backend.claim_fires(
        [claim("a", T0 + timedelta(seconds=i)) for i in range(10)], now=T0, lease_until=T0
    )
    later = T0 + timedelta(hours=2)
    await backend.claim_fires([claim("a", later)], now=later, lease_until=later)
    assert await admin.zcard(backend.keys.fire_claims) == 1
    assert 0 < await admin.pttl(backend.keys.fire_claims) <= FIRE_CLAIM_TTL_MS


async def test_run_records_and_overlap_marks_expire(make: Factory, admin: aioredis.Redis) -> None:
    backend = await make()
    run, mark = backend.keys.run("a@1"), backend.keys.overlap("a")
    await backend.begin_run("a@1", overlap_key="a", owner="w", now=T0, lease_until=T0 + LEASE)
    lease_ms = int(LEASE.total_seconds() * 1000)
    assert DONE_RUN_TTL_MS < await admin.pttl(run) <= DONE_RUN_TTL_MS + lease_ms
    assert 0 < await admin.pttl(mark) <= DONE_RUN_TTL_MS + lease_ms
    await backend.finish_run("a@1", overlap_key="a", owner="w", now=T0)
    assert 0 < await admin.pttl(run) <= DONE_RUN_TTL_MS
    assert not await admin.exists(mark)


async def test_odd_ids_and_bodies_round_trip(make: Factory) -> None:
    backend = await make()
    body = '{"v": "ü \\"/\\u0000 ✓"}'.encode()
    odd = Envelope('ação "1" {x}\\', "topic.a", body, {"x-jararaca-a": "1"})
    await backend.enqueue_delayed(odd, T0, task_id="k{1}")
    [got] = await backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=10)
    assert got == Claimed(f"k{{1}}/{odd.message_id}", odd, T0)
    later = T0 + LEASE + timedelta(seconds=1)
    assert await backend.reclaim_inflight(now=later, lease_until=later + LEASE, limit=10) == [got]
    await backend.ack_inflight([got.inflight_id])
    assert await backend.next_due() is None


async def test_an_odd_fire_id_round_trips(make: Factory) -> None:
    backend = await make()
    odd = FireClaim('ação "1" {x}\\@1', "a", T0, env('ação "1" {x}\\@1', {"v": "ü"}))
    assert await backend.claim_fires([odd], now=T0, lease_until=T0 + LEASE) == [ClaimResult.CLAIMED]
    later = T0 + LEASE + timedelta(seconds=1)
    got = await backend.reclaim_inflight(now=later, lease_until=later + LEASE, limit=10)
    assert got == [Claimed(odd.fire_id, odd.envelope, None)]


@pytest.mark.parametrize(
    "due",
    [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
        datetime(2000, 2, 29, 23, 59, 59, 1000, tzinfo=UTC),
        datetime(2100, 2, 28, 12, 30, 15, 500000, tzinfo=UTC),
        datetime(2400, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
    ],
)
async def test_due_instants_round_trip_through_the_scripts(make: Factory, due: datetime) -> None:
    # The scripts keep the due instant as a ZSET score and hand it back as a number: no date is
    # written in Lua, and none is stamped into the envelope.
    backend = await make()
    await backend.enqueue_delayed(env("m"), due, task_id="m")
    [got] = await backend.claim_due(now=due, lease_until=due + LEASE, limit=1)
    assert got == Claimed("m/m", env("m"), due)
    later = due + LEASE + timedelta(seconds=1)
    [again] = await backend.reclaim_inflight(now=later, lease_until=later + LEASE, limit=1)
    assert again.due_at == due


async def test_batches_larger_than_luas_unpack_limit(make: Factory) -> None:
    backend = await make()
    count = 10_000
    await backend.enqueue_delayed_many([(env(f"m{i}"), T0) for i in range(count)])
    got = await backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=count)
    assert len({c.envelope.message_id for c in got}) == count
    later = T0 + LEASE + timedelta(seconds=1)
    again = await backend.reclaim_inflight(now=later, lease_until=later + LEASE, limit=count)
    assert len({c.inflight_id for c in again}) == count
    await backend.ack_inflight([c.inflight_id for c in got])
    assert await backend.pending_count() == 0
    assert await backend.next_due() is None


# -- scripts ----------------------------------------------------------------------------------


async def test_scripts_are_reloaded_after_script_flush(
    make: Factory, admin: aioredis.Redis
) -> None:
    backend = await make()
    await backend.enqueue_delayed(env("m1"), T0, task_id="m1")
    await admin.script_flush()
    await backend.enqueue_delayed(env("m2"), T0, task_id="m2")
    await admin.script_flush()
    got = await backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=10)
    assert sorted(c.envelope.message_id for c in got) == ["m1", "m2"]


async def test_batched_run_scripts_are_reloaded_after_script_flush(
    make: Factory, admin: aioredis.Redis
) -> None:
    backend = await make()
    await admin.script_flush()
    # begin_run and finish_run calls of one loop turn share a pipeline, reloaded as a whole.
    starts = await asyncio.gather(
        *(
            backend.begin_run(f"a@{i}", overlap_key=None, owner="w", now=T0, lease_until=T0 + LEASE)
            for i in range(5)
        )
    )
    assert {s.status for s in starts} == {RunStatus.STARTED}
    await admin.script_flush()
    await asyncio.gather(
        *(backend.finish_run(f"a@{i}", overlap_key=None, owner="w", now=T0) for i in range(5))
    )
    again = await backend.begin_run(
        "a@0", overlap_key=None, owner="w2", now=T0, lease_until=T0 + LEASE
    )
    assert again.status is RunStatus.DONE


# -- entries Redis holds that the scripts cannot read -------------------------------------------


@pytest.mark.parametrize(
    "stored",
    [
        "not json",
        "[1, 2]",
        '{"rk": "topic.a"}',
        '{"id": 7, "rk": "topic.a", "body": "{}", "headers": {}}',
        '{"id": "bad"}',
    ],
)
async def test_an_unreadable_delayed_entry_is_dropped_and_the_rest_claimed(
    make: Factory, admin: aioredis.Redis, stored: str, caplog: pytest.LogCaptureFixture
) -> None:
    backend = await make()
    await backend.enqueue_delayed(env("good"), T0, task_id="good")
    await admin.zadd(backend.keys.delayed, {"bad": epoch_ms(T0) - 1})
    await admin.hset(backend.keys.delayed_env, "bad", stored)
    with caplog.at_level(logging.ERROR, logger="jararaca.backends.redis"):
        got = await backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=10)
    assert [c.envelope.message_id for c in got] == ["good"]
    assert any("unreadable" in r.getMessage() for r in caplog.records)
    assert await backend.pending_count() == 0
    later = T0 + LEASE + timedelta(seconds=1)
    assert await backend.reclaim_inflight(now=later, lease_until=later + LEASE, limit=10) == got


async def test_a_queued_id_without_an_envelope_is_dropped(
    make: Factory, admin: aioredis.Redis
) -> None:
    backend = await make()
    await admin.zadd(backend.keys.delayed, {"ghost": epoch_ms(T0)})
    assert await backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=10) == []
    assert await backend.pending_count() == 0
    assert await backend.next_due() is None


async def test_an_in_flight_lease_without_an_entry_is_dropped(
    make: Factory, admin: aioredis.Redis
) -> None:
    backend = await make()
    await admin.zadd(backend.keys.inflight, {"ghost": epoch_ms(T0)})
    assert await backend.next_due() == T0
    later = T0 + timedelta(seconds=1)
    assert await backend.reclaim_inflight(now=later, lease_until=later + LEASE, limit=10) == []
    assert await backend.next_due() is None


# -- wake-ups ---------------------------------------------------------------------------------


async def test_a_wakeup_reaches_a_listener_on_another_client(make: Factory) -> None:
    beat, publisher = await make("same"), await make("same")
    woken = asyncio.Event()
    beat.add_wakeup_listener(woken)
    await wait_for(woken)  # set once subscribed: earlier wake-ups could have been missed
    woken.clear()
    await publisher.enqueue_delayed(env("m1"), T0, task_id="m1")
    await wait_for(woken)


async def test_only_an_enqueue_that_makes_the_head_sooner_publishes(
    make: Factory, admin: aioredis.Redis
) -> None:
    backend = await make()
    pubsub = admin.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(backend.keys.wakeup_channel)
    try:
        await asyncio.wait_for(pubsub.get_message(timeout=None), WAIT)  # the confirmation
        at = [T0 + timedelta(seconds=s) for s in (10, 20, 5, 1, 30)]
        await backend.enqueue_delayed(env("m1"), at[0], task_id="m1")  # first: sooner
        await backend.enqueue_delayed(env("m2"), at[1], task_id="m2")  # later: silent
        await backend.enqueue_delayed(env("m3"), at[2], task_id="m3")  # sooner
        await backend.enqueue_delayed(env("x"), at[1], task_id="m3", time_policy="greater")
        await backend.enqueue_delayed_many([(env("m4"), at[4])])  # later: silent
        await backend.enqueue_delayed_many([(env("m5"), at[4]), (env("m6"), at[3])])  # sooner
        published = []
        for _ in range(3):
            message = await asyncio.wait_for(pubsub.get_message(timeout=None), WAIT)
            assert message is not None
            published.append(int(message["data"]))
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
    # m3 moved from 5 s to 20 s (greater), so the head then was m1 at 10 s, and m6 beat it.
    assert published == [epoch_ms(at[0]), epoch_ms(at[2]), epoch_ms(at[3])]


async def test_the_listener_comes_back_after_losing_its_connection(
    make: Factory, admin: aioredis.Redis, tag: str, caplog: pytest.LogCaptureFixture
) -> None:
    name = f"jararaca-test-{tag}"
    beat = await make("same", url=f"{REDIS_URL}?client_name={name}")
    publisher = await make("same")
    woken = asyncio.Event()
    beat.add_wakeup_listener(woken)
    await wait_for(woken)
    woken.clear()

    clients = await admin.client_list(_type="pubsub")
    [listener] = [c["id"] for c in clients if c.get("name") == name]
    channel = beat.keys.wakeup_channel

    async def subscribed_again() -> bool:
        clients = await admin.client_list(_type="pubsub")
        ids = [c["id"] for c in clients if c.get("name") == name and c.get("sub") == "1"]
        return ids != [] and listener not in ids

    with caplog.at_level(logging.INFO, logger="jararaca.backends.redis"):
        await admin.client_kill_filter(_id=listener)
        await wait_for(woken)  # nothing was enqueued: only the reconnection wakes it
        await eventually(subscribed_again, "the listener to subscribe on a new connection")
        # The subscription is live again: sooner entries reach the listener. Twice, as the
        # first wake-up could still be one of the resubscription's.
        for i in range(2):
            woken.clear()
            await publisher.enqueue_delayed(env(f"m{i}"), T0 - timedelta(seconds=i), task_id="k")
            await wait_for(woken)
    assert (await admin.pubsub_numsub(channel))[0][1] == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) <= 1  # one outage, one warning at most


async def test_close_is_idempotent_and_stops_the_listener(make: Factory) -> None:
    never_connected = RedisBackend(REDIS_URL, namespace="never-connected")
    await never_connected.close()
    await never_connected.close()

    backend = await make()
    woken = asyncio.Event()
    backend.add_wakeup_listener(woken)
    await wait_for(woken)
    task = backend._wakeups._task
    assert task is not None
    await backend.close()
    await backend.close()
    assert task.done()
    with pytest.raises(BackendError, match="is closed"):
        await backend.pending_count()  # no pool is opened again behind the caller's back


async def test_a_listener_added_before_connect_starts_with_connect(tag: str) -> None:
    backend = RedisBackend(REDIS_URL, namespace=f"test-{tag}-early")
    woken = asyncio.Event()
    backend.add_wakeup_listener(woken)
    try:
        await backend.connect()
        await wait_for(woken)
    finally:
        await backend.close()


# -- idempotency under races ------------------------------------------------------------------


@pytest.mark.parametrize("payload_policy", ["ignore", "replace"])
@pytest.mark.parametrize("time_policy", ["replace", "greater", "lesser"])
async def test_concurrent_enqueues_of_one_key_from_two_clients(
    make: Factory, payload_policy: str, time_policy: str
) -> None:
    one, two = await make("same"), await make("same")
    seed_due = 500
    await one.enqueue_delayed(
        env("seed", {"v": "seed", "due": seed_due}),
        T0 + timedelta(seconds=seed_due),
        task_id="key",
    )
    dues = random.Random(7).sample(range(1, 1000), 200)
    await asyncio.gather(
        *(
            (one if i % 2 else two).enqueue_delayed(
                env(f"m{i}", {"v": f"m{i}", "due": due}),
                T0 + timedelta(seconds=due),
                task_id="key",
                payload_policy=payload_policy,  # type: ignore[arg-type]
                time_policy=time_policy,  # type: ignore[arg-type]
            )
            for i, due in enumerate(dues)
        )
    )
    assert await two.pending_count() == 1
    final_due = await two.next_due()
    assert final_due is not None
    final_s = round((final_due - T0).total_seconds())
    [entry] = await two.claim_due(now=T0 + timedelta(days=1), lease_until=T0, limit=10)
    payload = json.loads(entry.envelope.body)
    assert entry.due_at == final_due

    if payload_policy == "ignore":
        assert payload["v"] == "seed"
    else:
        assert payload["v"] != "seed"
    if time_policy == "greater":
        assert final_s == max([seed_due, *dues])
    elif time_policy == "lesser":
        assert final_s == min([seed_due, *dues])
    else:
        assert final_s in dues
    if (payload_policy, time_policy) == ("replace", "replace"):
        assert payload["due"] == final_s  # payload and due came from the same, last, enqueue


# -- server configuration and errors ----------------------------------------------------------


async def test_info_on_this_server(make: Factory, admin: aioredis.Redis) -> None:
    backend = await make()
    policy = (await admin.config_get("maxmemory-policy"))["maxmemory-policy"]
    info = await backend.info()
    assert (info.kind, info.in_process) == ("redis", False)
    assert not info.persists  # the test server runs with --save "" --appendonly no
    assert info.evicts_keys is (policy != "noeviction")
    assert f"maxmemory-policy={policy}" in info.detail


async def test_info_when_config_is_refused(admin: aioredis.Redis, tag: str) -> None:
    user, password = f"jararaca-test-{tag}", uuid.uuid4().hex
    await admin.acl_setuser(
        user,
        enabled=True,
        passwords=[f"+{password}"],
        keys=["*"],
        channels=["*"],
        categories=["+@all"],
        commands=["-config"],
    )
    backend = RedisBackend(
        f"redis://{user}:{password}@127.0.0.1:6379/0", namespace=f"test-{tag}-acl"
    )
    try:
        await backend.connect()
        info = await backend.info()
        await backend.enqueue_delayed(env("m"), T0, task_id="m")  # everything else works
        assert await backend.pending_count() == 1
    finally:
        await backend.delete_namespace()
        await backend.close()
        await admin.acl_deluser(user)
    assert (info.kind, info.in_process) == ("redis", False)
    assert (info.persists, info.evicts_keys) == (True, False)
    assert "unknown" in info.detail


async def test_unreachable_redis_is_a_backend_error_without_the_password() -> None:
    backend = RedisBackend("redis://user:s3cret@127.0.0.1:1/0", namespace="nowhere")
    try:
        with pytest.raises(BackendError) as connecting:
            await backend.connect()
        with pytest.raises(BackendError) as counting:
            await backend.pending_count()
    finally:
        await backend.close()
    for error in (connecting.value, counting.value):
        assert "127.0.0.1:1" in str(error)
        assert "s3cret" not in str(error)
        assert "***" in str(error)
        assert isinstance(error.__cause__, RedisConnectionError)


async def test_wrong_credentials_are_a_credentials_error() -> None:
    backend = RedisBackend("redis://nobody:wrong-pass@127.0.0.1:6379/0", namespace="nowhere")
    try:
        with pytest.raises(CredentialsError) as connecting:
            await backend.connect()
    finally:
        await backend.close()
    assert "wrong-pass" not in str(connecting.value)


async def test_a_begin_cancelled_on_its_way_releases_the_run_it_started(make: Factory) -> None:
    backend = await make()
    asking = asyncio.create_task(
        backend.begin_run("a@1", overlap_key="a", owner="w", now=T0, lease_until=T0 + LEASE)
    )
    await asyncio.sleep(0)  # the call is queued in the batcher, its pipeline not yet sent
    asking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asking

    async def released() -> bool:
        start = await backend.begin_run(
            "a@1", overlap_key="a", owner="v", now=T0, lease_until=T0 + LEASE
        )
        return start.status is RunStatus.STARTED and start.attempt == 2

    for _ in range(100):  # the release follows the batched begin: wait on its state
        if await released():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the cancelled begin's run was never released")
