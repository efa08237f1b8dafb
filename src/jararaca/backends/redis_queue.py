"""The Redis backend's delayed queue and in-flight set, over one or more shards.

With one shard (the default) every call is one script on the namespace's keys, as it always
was. With ``?shards=N`` (see :mod:`jararaca.backends.redis_keys`) a delayed message is
enqueued in the shard of its task id, so its idempotency policy is still one atomic script;
claims and reclaims first look at the heads of every shard (one pipeline) to share the limit
out so that the earliest entries of all are taken first, then run each shard's script
concurrently (on a Redis Cluster the shards live on different masters). An in-flight
id of shard ``k > 0`` carries ``k`` in front (``<k>\\x1f<id>``), so an ack finds its shard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from jararaca import stored_json
from jararaca.backends import redis_scripts as scripts
from jararaca.backends.base import Claimed
from jararaca.backends.redis_keys import Keys, QueueKeys, shard_of
from jararaca.backends.redis_scripts import as_text
from jararaca.clock import epoch_ms, from_epoch_ms
from jararaca.policies import PayloadPolicy, TimePolicy
from jararaca.wire import Envelope

log = logging.getLogger("jararaca.backends.redis")

SHARD_MARK = "\x1f"  # between a shard number and an in-flight id: never part of an id


def _pairs(flat: Sequence[Any]) -> Iterator[tuple[Any, Any]]:
    return zip(flat[::2], flat[1::2], strict=True)


def _claimed(inflight_id: str, raw: bytes | str) -> Claimed:
    """An in-flight entry as stored: a fire's envelope, or a delayed message's
    ``{"due": ms, "envelope": ...}``."""
    data = stored_json.loads(raw)
    if "envelope" in data:
        envelope = Envelope.from_dict(data["envelope"])
        return Claimed(inflight_id, envelope, from_epoch_ms(int(data["due"])))
    return Claimed(inflight_id, Envelope.from_dict(data))


def tagged(shard: int, inflight_id: str) -> str:
    return inflight_id if shard == 0 else f"{shard}{SHARD_MARK}{inflight_id}"


def untagged(inflight_id: str) -> tuple[int, str]:
    number, mark, rest = inflight_id.partition(SHARD_MARK)
    return (int(number), rest) if mark and number.isdigit() else (0, inflight_id)


class RedisDelayedQueue:
    """DelayedQueue and InFlight over the client, keys and script runner of the backend."""

    keys: Keys

    def _redis(self) -> aioredis.Redis:
        raise NotImplementedError

    def _errors(self, doing: str) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    async def _eval(
        self,
        script: scripts.Script,
        keys: Sequence[str],
        args: Sequence[Any],
        *,
        replicated: bool = False,
    ) -> Any:
        raise NotImplementedError

    def _shard_for(self, task_id: str) -> QueueKeys:
        return self.keys.shards[shard_of(task_id, len(self.keys.shards))]

    # -- in flight ------------------------------------------------------------------------

    async def ack_inflight(self, inflight_ids: Sequence[str]) -> None:
        by_shard: dict[int, list[str]] = defaultdict(list)
        for inflight_id in inflight_ids:
            shard, bare = untagged(inflight_id)
            by_shard[shard].append(bare)
        await asyncio.gather(
            *(
                self._eval(scripts.ACK_INFLIGHT, self._flight_keys(shard), ids)
                for shard, ids in by_shard.items()
            )
        )

    def _flight_keys(self, shard: int) -> list[str]:
        queue = self.keys.shards[shard]
        return [queue.inflight, queue.inflight_env]

    async def reclaim_inflight(
        self, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[Claimed]:
        claimed: list[Claimed] = []
        order: dict[str, float] = {}
        shards = range(len(self.keys.shards))
        while len(claimed) < limit:  # as claim_due: until the limit or nothing is left
            # Leases that ended strictly before now, as the script takes them.
            heads = [self._flight_keys(k)[0] for k in shards]
            shares, scores = await self._shares(heads, f"({epoch_ms(now)}", limit - len(claimed))
            order.update(scores)
            found = await asyncio.gather(
                *(
                    self._eval(
                        scripts.RECLAIM_INFLIGHT,
                        self._flight_keys(k),
                        [epoch_ms(now), epoch_ms(lease_until), share],
                    )
                    for k, share in shares.items()
                )
            )
            claimed += await self._readable(list(shares), found)
            if len(shards) == 1 or not shares:
                break
        return sorted(claimed, key=lambda c: order.get(c.inflight_id, math.inf))

    async def _shares(
        self, zsets: Sequence[str], upto: int | str, limit: int
    ) -> tuple[dict[int, int], dict[str, float]]:
        """How many of the ``limit`` lowest-scored members (score up to ``upto``) of all
        shards each shard holds, and their scores by (tagged) id: a claim over shards takes
        the earliest entries first, wherever they are, as one queue would. With one shard
        there is nothing to share out (no look is taken)."""
        if len(zsets) == 1:
            return {0: limit}, {}
        pipe = self._redis().pipeline(transaction=False)
        for key in zsets:
            pipe.zrange(key, "-inf", upto, byscore=True, offset=0, num=limit, withscores=True)
        with self._errors("looking at the heads of the shards"):
            heads = await pipe.execute()
        earliest = sorted(
            (score, tagged(shard, as_text(member)))
            for shard, head in enumerate(heads)
            for member, score in head
        )[:limit]
        shares: dict[int, int] = defaultdict(int)
        for _, inflight_id in earliest:
            shares[untagged(inflight_id)[0]] += 1
        return dict(shares), {inflight_id: score for score, inflight_id in earliest}

    # -- delayed queue --------------------------------------------------------------------

    async def enqueue_delayed(
        self,
        envelope: Envelope,
        due: datetime,
        *,
        task_id: str,
        payload_policy: PayloadPolicy = "ignore",
        time_policy: TimePolicy = "replace",
    ) -> None:
        queue = self._shard_for(task_id)
        keys = [queue.delayed, queue.delayed_env]
        args = [
            task_id,
            epoch_ms(due),
            envelope.to_json(),
            payload_policy,
            time_policy,
            self.keys.wakeup_channel,
        ]
        await self._eval(scripts.ENQUEUE_DELAYED, keys, args, replicated=True)

    async def enqueue_delayed_many(self, entries: Sequence[tuple[Envelope, datetime]]) -> None:
        by_shard: dict[QueueKeys, list[Any]] = defaultdict(list)
        for envelope, due in entries:
            task_id = envelope.message_id
            by_shard[self._shard_for(task_id)] += [task_id, epoch_ms(due), envelope.to_json()]
        await asyncio.gather(
            *(
                self._eval(
                    scripts.ENQUEUE_DELAYED_MANY,
                    [queue.delayed, queue.delayed_env],
                    [self.keys.wakeup_channel, *args],
                    replicated=True,
                )
                for queue, args in by_shard.items()
            )
        )

    async def claim_due(self, *, now: datetime, lease_until: datetime, limit: int) -> list[Claimed]:
        claimed: list[Claimed] = []
        queues = self.keys.shards
        # Other beats may take what this one saw at the heads: look again for what is left
        # of the limit until it is reached or nothing is due (one round, usually).
        while len(claimed) < limit:
            want = limit - len(claimed)
            shares, _ = await self._shares([q.delayed for q in queues], epoch_ms(now), want)
            found = await asyncio.gather(
                *(
                    self._eval(
                        scripts.CLAIM_DUE,
                        [q.delayed, q.delayed_env, q.inflight, q.inflight_env],
                        [epoch_ms(now), epoch_ms(lease_until), share],
                        replicated=True,
                    )
                    for q, share in ((queues[k], share) for k, share in shares.items())
                )
            )
            claimed += await self._readable(list(shares), found)
            # Stop when nothing is due any more; a round that took nothing although the heads
            # showed entries lost them to other beats, and the next look sees what is left.
            if len(queues) == 1 or not shares:
                break
        # Each shard answers earliest first; merged, the earliest of all come first.
        return sorted(claimed, key=lambda c: c.due_at or now) if len(queues) > 1 else claimed

    async def _readable(
        self, shards: Sequence[int], found: Sequence[Sequence[Any]]
    ) -> list[Claimed]:
        """Parse what a claim script returned on each of ``shards``; an entry that cannot be
        read (written by hand or by another program) is logged and dropped, so it cannot block
        the queue."""
        claimed, unreadable = [], []
        for shard, replies in zip(shards, found, strict=True):
            for flight, raw in _pairs(replies):
                inflight_id = tagged(shard, as_text(flight))
                try:
                    if as_text(flight) == "!":
                        raise ValueError("not an envelope")
                    claimed.append(_claimed(inflight_id, raw))
                except (ValueError, KeyError, TypeError) as exc:
                    log.error("dropped an unreadable delayed entry (%s): %.200s", exc, as_text(raw))
                    if as_text(flight) != "!":
                        unreadable.append(inflight_id)
        if unreadable:
            await self.ack_inflight(unreadable)
        return claimed

    async def next_due(self) -> datetime | None:
        pipe = self._redis().pipeline(transaction=False)
        for queue in self.keys.shards:
            pipe.zrange(queue.delayed, 0, 0, withscores=True)
            pipe.zrange(queue.inflight, 0, 0, withscores=True)
        with self._errors("reading the next due instant"):
            heads = await pipe.execute()
        scores = [int(head[0][1]) for head in heads if head]
        return from_epoch_ms(min(scores)) if scores else None

    async def pending_count(self) -> int:
        pipe = self._redis().pipeline(transaction=False)
        for queue in self.keys.shards:
            pipe.zcard(queue.delayed)
        with self._errors("counting pending messages"):
            return sum(int(n) for n in await pipe.execute())
