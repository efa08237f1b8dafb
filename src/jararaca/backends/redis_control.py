"""The Redis backend's control side: run history, paused actions, heartbeats, and looking
into and steering the delayed queue. Mixed into :class:`~jararaca.backends.redis.RedisBackend`
(which provides the client, the keys and the script runner); none of it is on a hot path."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import redis.asyncio as aioredis

from jararaca import stored_json
from jararaca.backends import redis_scripts as scripts
from jararaca.backends.base import DelayedEntry, FireClaim
from jararaca.backends.records import ProcessRecord, RunRecord, ScheduleRecord
from jararaca.backends.redis_keys import Keys, QueueKeys, shard_of
from jararaca.backends.redis_scripts import as_text
from jararaca.clock import duration_ms, epoch_ms, from_epoch_ms
from jararaca.wire import Envelope


class RedisControl:
    """RunHistory, Pauses, Processes and DelayedAdmin over the backend's client."""

    keys: Keys
    history_limit: int

    def _redis(self) -> aioredis.Redis:
        raise NotImplementedError

    def _errors(self, doing: str) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    async def _eval(self, script: scripts.Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        raise NotImplementedError

    # -- run history ----------------------------------------------------------------------

    async def record_runs(self, records: Sequence[RunRecord]) -> None:
        if not records:
            return
        keys: list[str] = []
        args: list[Any] = [self.history_limit]
        for record in records:
            keys.extend(self.keys.history(record.action_id))
            args += [record.fire_id, epoch_ms(record.scheduled_at), record.to_json()]
        await self._eval(scripts.RECORD_RUNS, keys, args)

    async def run_history(self, action_id: str, *, limit: int) -> list[RunRecord]:
        index, records = self.keys.history(action_id)
        with self._errors("reading the run history"):
            fires = cast(list[bytes], await self._redis().zrevrange(index, 0, max(limit, 1) - 1))
            if not fires or limit <= 0:
                return []
            raws = await self._redis().hmget(records, fires)
        return [RunRecord.from_json(raw) for raw in raws if raw is not None]

    # -- pauses ---------------------------------------------------------------------------

    async def pause(self, action_id: str, reason: str) -> None:
        with self._errors("pausing an action"):
            await self._redis().hset(self.keys.paused, action_id, reason)

    async def resume(self, action_id: str) -> bool:
        with self._errors("resuming an action"):
            return bool(await self._redis().hdel(self.keys.paused, action_id))

    async def paused(self) -> dict[str, str]:
        with self._errors("reading paused actions"):
            found = await self._redis().hgetall(self.keys.paused)
        return {as_text(k): as_text(v) for k, v in found.items()}

    # -- processes ------------------------------------------------------------------------

    # A heartbeat's two writes go out pipelined, not in a MULTI: half of one is harmless (a
    # member without its record is skipped and dropped by processes(); a record without its
    # member is listed from the next heartbeat), and redis-py's asyncio Cluster transaction
    # runs each command through asyncio.run() in a thread of its own, which right after a
    # failover left connections bound to that dead loop in the shared pool (a worker's batched
    # calls then hung: tests/faults/test_redis_cluster_failover.py).

    async def heartbeat(self, record: ProcessRecord, *, keep: timedelta) -> None:
        pipe = self._redis().pipeline(transaction=False)
        pipe.sadd(self.keys.processes, record.process_id)
        # The record expires on its own: a process killed with SIGKILL vanishes after `keep`.
        pipe.set(self.keys.process(record.process_id), record.to_json(), px=_ms(keep))
        with self._errors("recording a heartbeat"):
            await pipe.execute()

    async def processes(self) -> list[ProcessRecord]:
        client = self._redis()
        with self._errors("reading heartbeats"):
            ids = sorted(as_text(i) for i in await client.smembers(self.keys.processes))
            if not ids:
                return []
            raws = await client.mget([self.keys.process(i) for i in ids])
            gone = [i for i, raw in zip(ids, raws, strict=True) if raw is None]
            if gone:
                await client.srem(self.keys.processes, *gone)
        return [ProcessRecord.from_json(raw) for raw in raws if raw is not None]

    async def forget_process(self, process_id: str) -> None:
        pipe = self._redis().pipeline(transaction=False)
        pipe.srem(self.keys.processes, process_id)
        pipe.delete(self.keys.process(process_id))
        with self._errors("forgetting a process"):
            await pipe.execute()

    # -- the delayed queue, for operators -------------------------------------------------

    async def list_delayed(self, *, limit: int) -> list[DelayedEntry]:
        if limit <= 0:
            return []
        entries = []
        with self._errors("listing delayed messages"):
            for queue in self.keys.shards:
                entries += await self._shard_head(queue, limit)
        return sorted(entries, key=lambda entry: entry.due_at)[:limit]

    async def _shard_head(self, queue: QueueKeys, limit: int) -> list[DelayedEntry]:
        client = self._redis()
        head = cast(
            list[tuple[bytes, float]],
            await client.zrange(queue.delayed, 0, limit - 1, withscores=True),
        )
        if not head:
            return []
        raws = await client.hmget(queue.delayed_env, [task for task, _ in head])
        entries = []
        for (task, due), raw in zip(head, raws, strict=True):
            if raw is None:
                continue  # taken by a beat between the two reads
            with contextlib.suppress(ValueError, KeyError, TypeError):
                envelope = Envelope.from_json(raw)
                entries.append(DelayedEntry(as_text(task), envelope, from_epoch_ms(int(due))))
        return entries

    async def cancel_delayed(
        self, *, task_id: str | None = None, message_id: str | None = None
    ) -> bool:
        queues: list[QueueKeys] = []
        if task_id is not None:
            # The task id's own shard; fires queued by enqueue_fires stay in shard 0.
            queues = [self.keys.shards[shard_of(task_id, len(self.keys.shards))]]
            queues += [q for q in self.keys.shards[:1] if q not in queues]
        elif message_id is not None:
            found = await self._task_of(message_id)
            if found is not None:
                task_id, queue = found
                queues = [queue]
        for queue in queues:
            keys = [queue.delayed, queue.delayed_env]
            if await self._eval(scripts.CANCEL_DELAYED, keys, [task_id, message_id or ""]):
                return True
        return False

    async def _task_of(self, message_id: str) -> tuple[str, QueueKeys] | None:
        """The task id (and shard) of the pending entry holding ``message_id`` (a scan:
        operators only)."""
        client = self._redis()
        with self._errors("looking for a delayed message"):
            for queue in self.keys.shards:
                async for task, raw in client.hscan_iter(queue.delayed_env, count=1000):
                    if _message_id(raw) == message_id:
                        return as_text(task), queue
        return None

    async def enqueue_fires(self, claims: Sequence[FireClaim], *, due: datetime) -> list[str]:
        if not claims:
            return []
        k = self.keys
        keys = [k.fire_claims, k.delayed, k.delayed_env]
        args: list[Any] = [epoch_ms(due), epoch_ms(due), k.wakeup_channel]
        for claim in claims:
            keys += [k.run(claim.fire_id), k.history(claim.action_id)[1]]
            args += [claim.fire_id, claim.envelope.to_json()]
        queued = await self._eval(scripts.ENQUEUE_FIRES, keys, args)
        return [as_text(fire) for fire in queued]


class RedisSchedules:
    """Dynamic schedules in a HASH, with a version counter beats read once per tick."""

    keys: Keys

    def _redis(self) -> aioredis.Redis:
        raise NotImplementedError

    def _errors(self, doing: str) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    async def _eval(self, script: scripts.Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        raise NotImplementedError

    async def put_schedule(self, schedule: ScheduleRecord) -> None:
        keys = [self.keys.schedules, self.keys.schedules_version]
        await self._eval(scripts.PUT_SCHEDULE, keys, [schedule.schedule_id, schedule.to_json()])

    async def delete_schedule(self, schedule_id: str) -> bool:
        keys = [self.keys.schedules, self.keys.schedules_version]
        return bool(await self._eval(scripts.DELETE_SCHEDULE, keys, [schedule_id]))

    async def dynamic_schedules(self) -> list[ScheduleRecord]:
        with self._errors("reading schedules"):
            found = await self._redis().hgetall(self.keys.schedules)
        records = [ScheduleRecord.from_json(raw) for raw in found.values()]
        return sorted(records, key=lambda s: s.schedule_id)

    async def schedules_version(self) -> int:
        with self._errors("reading the schedules' version"):
            return int(await self._redis().get(self.keys.schedules_version) or 0)


def _ms(delta: timedelta) -> int:
    return max(1, duration_ms(delta))


def _message_id(raw: bytes | str) -> str | None:
    with contextlib.suppress(ValueError, KeyError, TypeError):
        found = stored_json.loads(raw).get("id")
        return found if isinstance(found, str) else None
    return None
