"""Redis state backend (``redis://``, ``rediss://``, ``unix://``).

Every state change is one Lua script from ``backends/lua/`` (loaded with SCRIPT LOAD, called by
EVALSHA, reloaded on NOSCRIPT), so it is atomic across any number of beats and workers. Times
are passed in as epoch milliseconds: scripts never read the server clock, so tests control
time. Batched operations take their items as ARGV and cost one round trip whatever their size.
Key names live in :mod:`jararaca.backends.redis_keys`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, RedisError, ResponseError

from jararaca.backends import redis_scripts as scripts
from jararaca.backends.base import (
    BackendInfo,
    Claimed,
    ClaimResult,
    FireClaim,
)
from jararaca.backends.redis_batch import ScriptBatcher
from jararaca.backends.redis_control import RedisControl, RedisSchedules
from jararaca.backends.redis_keys import Keys, scan_pattern
from jararaca.backends.redis_runs import RedisRunLeases
from jararaca.backends.redis_scripts import as_text
from jararaca.backends.redis_wakeup import WakeupChannel
from jararaca.clock import epoch_ms, from_epoch_ms
from jararaca.errors import BackendError, ConfigError, CredentialsError
from jararaca.policies import PayloadPolicy, TimePolicy
from jararaca.redaction import redact
from jararaca.settings import run_history
from jararaca.wire import Envelope

log = logging.getLogger(__name__)

FIRE_CLAIM_TTL_MS = 3_600_000  # the protocol promises to remember a claim for an hour
_MAX_CONNECTIONS = 50  # per backend; callers beyond it wait (20 s by default) for a free one
# The scripts use ZRANGE ... BYSCORE (6.2) and the backend relies on its semantics.
MIN_REDIS_VERSION = (6, 2)


def _claimed(inflight_id: bytes | str, raw: bytes | str) -> Claimed:
    """An in-flight entry as stored: a fire's envelope, or a delayed message's
    ``{"due": ms, "envelope": ...}``."""
    data = json.loads(raw)
    if "envelope" in data:
        envelope = Envelope.from_dict(data["envelope"])
        return Claimed(as_text(inflight_id), envelope, from_epoch_ms(int(data["due"])))
    return Claimed(as_text(inflight_id), Envelope.from_dict(data))


_CLAIM_ANSWERS = (ClaimResult.TAKEN, ClaimResult.CLAIMED, ClaimResult.PAUSED)


def _pairs(flat: Sequence[Any]) -> Iterator[tuple[Any, Any]]:
    return zip(flat[::2], flat[1::2], strict=True)


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


class RedisBackend(RedisRunLeases, RedisControl, RedisSchedules):
    """The :class:`~jararaca.backends.base.Backend` protocols on one Redis client and pool."""

    def __init__(self, url: str, *, namespace: str) -> None:
        self.url = url
        self.namespace = namespace
        self.keys = Keys.for_namespace(namespace)
        self.history_limit = run_history()
        self._client: aioredis.Redis | None = None
        self._connected = False
        self._closed = False
        self._wakeups = WakeupChannel(
            self._redis,
            self.keys.wakeup_channel,
            redact(url),
            name=f"jararaca-redis-wakeup:{namespace}",
        )
        # begin/finish of runs handled at the same time share one round trip.
        self._runs = ScriptBatcher(self._redis, self._failure)
        self._releases: set[asyncio.Future[None]] = set()

    def _failure(self, doing: str, exc: RedisError) -> BackendError:
        return BackendError(f"Redis at {redact(self.url)} failed while {doing}: {exc}")

    # -- connection -----------------------------------------------------------------------

    def _redis(self) -> aioredis.Redis:
        # Created lazily so that the client belongs to the event loop that uses it.
        if self._closed:
            # A late call (a batched flush, a caller holding on past close) must not open a
            # pool that nobody would close.
            raise BackendError(f"the backend for {redact(self.url)} is closed")
        if self._client is None:
            try:
                # A blocking pool makes a burst of concurrent calls (a publisher gathering a
                # thousand delays) wait for a connection instead of failing with "Too many
                # connections". URL query options (max_connections=, timeout=...) still win.
                pool = aioredis.BlockingConnectionPool.from_url(
                    self.url,
                    decode_responses=False,
                    socket_keepalive=True,
                    max_connections=_MAX_CONNECTIONS,
                )
                self._client = aioredis.Redis.from_pool(pool)
            except ValueError as exc:
                raise ConfigError(f"bad Redis URL {redact(self.url)!r}: {exc}") from None
        return self._client

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except RedisError as exc:
            raise self._failure(doing, exc) from exc

    async def connect(self) -> None:
        self._closed = False
        client = self._redis()
        try:
            server = await client.info("server")
            await scripts.load_all(client)
        except AuthenticationError:
            raise CredentialsError(
                f"Redis at {redact(self.url)} refused the login: check the user and password "
                "in the backend URL"
            ) from None
        except RedisError as exc:
            raise BackendError(
                f"cannot use Redis at {redact(self.url)} ({exc}): check the backend URL, that "
                "Redis is running and reachable, and its credentials"
            ) from exc
        version = str(server.get("redis_version", "0"))
        if _version(version) < MIN_REDIS_VERSION:
            raise ConfigError(
                f"Redis at {redact(self.url)} is version {version}; jararaca needs Redis "
                f"{'.'.join(map(str, MIN_REDIS_VERSION))} or newer (ZRANGE BYSCORE, ZADD GT/LT): "
                "upgrade the server"
            )
        self._connected = True
        self._wakeups.start()

    async def close(self) -> None:
        self._connected = False
        self._closed = True
        await self._wakeups.stop()
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    async def info(self) -> BackendInfo:
        pipe = self._redis().pipeline(transaction=False)
        for parameter in ("maxmemory-policy", "maxmemory", "save", "appendonly"):
            pipe.config_get(parameter)
        with self._errors("reading its configuration"):
            try:
                replies = await pipe.execute()
            except ResponseError as exc:  # managed Redis often disables or renames CONFIG
                return BackendInfo(
                    kind="redis",
                    evicts_keys=False,
                    persists=True,
                    detail=f"eviction and persistence unknown: CONFIG GET refused ({exc})",
                )
        config = {as_text(k): as_text(v) for reply in replies for k, v in reply.items()}
        policy = config.get("maxmemory-policy", "noeviction")
        save, aof = config.get("save", ""), config.get("appendonly", "no")
        detail = (
            f"maxmemory-policy={policy} maxmemory={config.get('maxmemory', '?')} "
            f"save={save!r} appendonly={aof}"
        )
        # volatile-* policies count as evicting too: run records, overlap marks and fire claims
        # carry TTLs, and losing them would run a fire twice.
        return BackendInfo(
            kind="redis",
            evicts_keys=policy != "noeviction",
            persists=bool(save.strip()) or aof == "yes",
            detail=detail,
        )

    async def delete_namespace(self) -> None:
        """Delete every key of this namespace (for tests and operators; it uses SCAN)."""
        client = self._redis()
        with self._errors("deleting the namespace's keys"):
            batch: list[bytes] = []
            async for key in client.scan_iter(match=scan_pattern(self.namespace), count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    await client.unlink(*batch)
                    batch.clear()
            if batch:
                await client.unlink(*batch)

    async def _eval(self, script: scripts.Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        with self._errors(f"running the {script.name} script"):
            return await scripts.run(self._redis(), script, keys, args)

    # -- wake-ups -------------------------------------------------------------------------

    def add_wakeup_listener(self, event: asyncio.Event) -> None:
        self._wakeups.add(event, connected=self._connected)

    def remove_wakeup_listener(self, event: asyncio.Event) -> None:
        self._wakeups.discard(event)

    # -- schedule state -------------------------------------------------------------------

    async def get_last_fires(self, action_ids: Sequence[str]) -> dict[str, datetime]:
        if not action_ids:
            return {}
        with self._errors("reading last fires"):
            values = await self._redis().hmget(self.keys.last_fires, list(action_ids))
        return {
            a: from_epoch_ms(int(v))
            for a, v in zip(action_ids, values, strict=True)
            if v is not None
        }

    async def claim_fires(
        self, claims: Sequence[FireClaim], *, now: datetime, lease_until: datetime
    ) -> list[ClaimResult]:
        if not claims:
            return []
        k = self.keys
        keys = [k.fire_claims, k.last_fires, k.inflight, k.inflight_env, k.paused]
        args: list[Any] = [epoch_ms(now), epoch_ms(lease_until), FIRE_CLAIM_TTL_MS]
        args.append(self.history_limit)
        for c in claims:
            keys.extend(k.history(c.action_id))
            args += [
                c.fire_id,
                c.action_id,
                epoch_ms(c.scheduled_at),
                c.envelope.message_id,
                c.envelope.to_json(),
            ]
        answers = await self._eval(scripts.CLAIM_FIRES, keys, args)
        return [_CLAIM_ANSWERS[int(a)] for a in answers]

    # -- in flight ------------------------------------------------------------------------

    async def ack_inflight(self, inflight_ids: Sequence[str]) -> None:
        if inflight_ids:
            keys = [self.keys.inflight, self.keys.inflight_env]
            await self._eval(scripts.ACK_INFLIGHT, keys, list(inflight_ids))

    async def reclaim_inflight(
        self, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[Claimed]:
        if limit <= 0:
            return []
        keys = [self.keys.inflight, self.keys.inflight_env]
        args = [epoch_ms(now), epoch_ms(lease_until), limit]
        found = await self._eval(scripts.RECLAIM_INFLIGHT, keys, args)
        return await self._readable(found)

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
        keys = [self.keys.delayed, self.keys.delayed_env]
        args = [
            task_id,
            epoch_ms(due),
            envelope.to_json(),
            payload_policy,
            time_policy,
            self.keys.wakeup_channel,
        ]
        await self._eval(scripts.ENQUEUE_DELAYED, keys, args)

    async def enqueue_delayed_many(self, entries: Sequence[tuple[Envelope, datetime]]) -> None:
        if not entries:
            return
        args: list[Any] = [self.keys.wakeup_channel]
        for envelope, due in entries:
            args += [envelope.message_id, epoch_ms(due), envelope.to_json()]
        await self._eval(
            scripts.ENQUEUE_DELAYED_MANY, [self.keys.delayed, self.keys.delayed_env], args
        )

    async def claim_due(self, *, now: datetime, lease_until: datetime, limit: int) -> list[Claimed]:
        if limit <= 0:
            return []
        k = self.keys
        keys = [k.delayed, k.delayed_env, k.inflight, k.inflight_env]
        args = [epoch_ms(now), epoch_ms(lease_until), limit]
        found = await self._eval(scripts.CLAIM_DUE, keys, args)
        return await self._readable(found)

    async def _readable(self, found: Sequence[Any]) -> list[Claimed]:
        """Parse what a claim script returned; an entry that cannot be read (written by hand
        or by another program) is logged and dropped, so it cannot block the queue."""
        claimed, unreadable = [], []
        for flight, raw in _pairs(found):
            try:
                if as_text(flight) == "!":
                    raise ValueError("not an envelope")
                claimed.append(_claimed(flight, raw))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("dropped an unreadable delayed entry (%s): %.200s", exc, as_text(raw))
                if as_text(flight) != "!":
                    unreadable.append(as_text(flight))
        if unreadable:
            await self.ack_inflight(unreadable)
        return claimed

    async def next_due(self) -> datetime | None:
        pipe = self._redis().pipeline(transaction=False)
        pipe.zrange(self.keys.delayed, 0, 0, withscores=True)
        pipe.zrange(self.keys.inflight, 0, 0, withscores=True)
        with self._errors("reading the next due instant"):
            heads = await pipe.execute()
        scores = [int(head[0][1]) for head in heads if head]
        return from_epoch_ms(min(scores)) if scores else None

    async def pending_count(self) -> int:
        with self._errors("counting pending messages"):
            return int(await self._redis().zcard(self.keys.delayed))

    # -- runs -----------------------------------------------------------------------------

    async def is_running(self, overlap_key: str, *, now: datetime) -> bool:
        with self._errors("reading an overlap mark"):
            lease = await self._redis().hget(self.keys.overlap(overlap_key), "lease")
        return lease is not None and int(lease) > epoch_ms(now)
