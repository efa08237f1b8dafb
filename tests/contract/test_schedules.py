"""Contract of the Schedules protocol (dynamic schedules: put, delete, list, version) on every
backend kind: memory, SQLite and the real Redis."""

from __future__ import annotations

from jararaca.backends.base import Backend
from jararaca.backends.records import ScheduleRecord
from tests.contract.conftest import T0, BackendFactory


def schedule(
    schedule_id: str,
    cron: str = "*/5 * * * *",
    *,
    tz: str = "Europe/Lisbon",
    topic: str = "reports.due",
    catch_up: str = "latest",
    jitter: float = 0.0,
) -> ScheduleRecord:
    body = '{"text":"ação ✓","n":1}'
    return ScheduleRecord(schedule_id, cron, tz, topic, body, catch_up, jitter, created_at=T0)


def by_id(records: list[ScheduleRecord]) -> dict[str, ScheduleRecord]:
    ids = [r.schedule_id for r in records]
    assert len(ids) == len(set(ids)), f"a schedule listed twice: {ids}"
    return {r.schedule_id: r for r in records}


async def test_a_put_schedule_is_listed_with_every_field(backend: Backend) -> None:
    assert await backend.dynamic_schedules() == []
    assert await backend.schedules_version() == 0
    nightly = schedule("nightly", "0 3 * * *", catch_up="all", jitter=2.5)
    await backend.put_schedule(nightly)
    assert await backend.dynamic_schedules() == [nightly]
    assert await backend.schedules_version() != 0


async def test_putting_an_id_again_replaces_it(backend: Backend) -> None:
    await backend.put_schedule(schedule("s1"))
    await backend.put_schedule(schedule("s2"))
    replacement = schedule("s1", "* * * * * *", tz="UTC", topic="other.topic", catch_up="none")
    await backend.put_schedule(replacement)
    assert by_id(await backend.dynamic_schedules()) == {"s1": replacement, "s2": schedule("s2")}


async def test_the_version_changes_on_every_put_and_delete(backend: Backend) -> None:
    versions = [await backend.schedules_version()]

    async def changed() -> None:
        version = await backend.schedules_version()
        assert version not in versions, (version, versions)  # never back to an earlier one
        versions.append(version)

    await backend.put_schedule(schedule("s1"))
    await changed()
    await backend.put_schedule(schedule("s1"))  # the same record again is still a put
    await changed()
    await backend.put_schedule(schedule("s2", "0 * * * *"))
    await changed()
    assert await backend.delete_schedule("s1") is True
    await changed()
    # Reading changes nothing.
    await backend.dynamic_schedules()
    assert await backend.schedules_version() == versions[-1]


async def test_delete_says_whether_there_was_one_and_removes_it(backend: Backend) -> None:
    await backend.put_schedule(schedule("s1"))
    await backend.put_schedule(schedule("s2"))
    assert await backend.delete_schedule("s1") is True
    assert await backend.dynamic_schedules() == [schedule("s2")]
    assert await backend.delete_schedule("s1") is False
    assert await backend.delete_schedule("never-put") is False
    assert await backend.dynamic_schedules() == [schedule("s2")]
    assert await backend.delete_schedule("s2") is True
    assert await backend.dynamic_schedules() == []


async def test_another_connection_to_the_store_sees_the_same_schedules_and_version(
    make_backend: BackendFactory,
) -> None:
    # What a beat started later (or another process) reads: the store, not a cache.
    first = make_backend("kept")
    await first.connect()
    await first.put_schedule(schedule("s1"))
    version = await first.schedules_version()
    again = make_backend("kept")
    await again.connect()
    assert await again.dynamic_schedules() == [schedule("s1")]
    assert await again.schedules_version() == version
    assert await again.delete_schedule("s1") is True
    assert await first.dynamic_schedules() == []
    assert await first.schedules_version() != version


async def test_namespaces_keep_their_schedules_and_versions_apart(
    make_backend: BackendFactory,
) -> None:
    one, two = make_backend("one"), make_backend("two")
    await one.connect()
    await two.connect()
    await one.put_schedule(schedule("shared-id", "0 1 * * *"))
    assert await two.dynamic_schedules() == []
    assert await two.schedules_version() == 0
    await two.put_schedule(schedule("shared-id", "0 2 * * *"))
    await two.put_schedule(schedule("only-two"))
    version_one = await one.schedules_version()
    assert await one.dynamic_schedules() == [schedule("shared-id", "0 1 * * *")]
    assert await two.delete_schedule("shared-id") is True
    assert await one.dynamic_schedules() == [schedule("shared-id", "0 1 * * *")]
    assert await one.schedules_version() == version_one
    assert await one.delete_schedule("only-two") is False
    assert await two.dynamic_schedules() == [schedule("only-two")]
