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
import hashlib
import logging
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, NoScriptError, RedisError, ResponseError

from jararaca.backends.base import (
    PAYLOAD_POLICIES,
    REMEMBER_DONE,
    TIME_POLICIES,
    BackendInfo,
    FireClaim,
    PayloadPolicy,
    RunStart,
    RunStatus,
    TimePolicy,
)
from jararaca.backends.redis_batch import ScriptBatcher
from jararaca.backends.redis_keys import Keys, scan_pattern
from jararaca.clock import epoch_ms, from_epoch_ms
from jararaca.errors import BackendError, ConfigError, CredentialsError
from jararaca.redaction import redact
from jararaca.wire import Envelope

log = logging.getLogger(__name__)

FIRE_CLAIM_TTL_MS = 3_600_000  # the protocol promises to remember a claim for an hour
_LISTEN_BACKOFF_CAP = 5.0  # seconds between two resubscription attempts, at most
_MAX_CONNECTIONS = 50  # per backend; callers beyond it wait (20 s by default) for a free one


class _Script:
    """One Lua file, identified on the server by the SHA1 of its source."""

    __slots__ = ("name", "sha", "source")

    def __init__(self, name: str) -> None:
        self.name = name
        lua = resources.files("jararaca.backends").joinpath("lua", f"{name}.lua")
        self.source = lua.read_bytes()
        self.sha = hashlib.sha1(self.source, usedforsecurity=False).hexdigest()


_CLAIM_FIRES = _Script("claim_fires")
_ACK_INFLIGHT = _Script("ack_inflight")
_RECLAIM_INFLIGHT = _Script("reclaim_inflight")
_ENQUEUE_DELAYED = _Script("enqueue_delayed")
_ENQUEUE_DELAYED_MANY = _Script("enqueue_delayed_many")
_CLAIM_DUE = _Script("claim_due")
_BEGIN_RUN = _Script("begin_run")
_RENEW_RUN = _Script("renew_run")
_FINISH_RUN = _Script("finish_run")
_SCRIPTS: tuple[_Script, ...] = (_CLAIM_FIRES, _ACK_INFLIGHT, _RECLAIM_INFLIGHT, _ENQUEUE_DELAYED)
_SCRIPTS += (_ENQUEUE_DELAYED_MANY, _CLAIM_DUE, _BEGIN_RUN, _RENEW_RUN, _FINISH_RUN)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisBackend:
    """The :class:`~jararaca.backends.base.Backend` protocol on one Redis client and pool."""

    def __init__(self, url: str, *, namespace: str) -> None:
        self.url = url
        self.namespace = namespace
        self.keys = Keys.for_namespace(namespace)
        self._client: aioredis.Redis | None = None
        self._connected = False
        self._listeners: set[asyncio.Event] = set()
        self._listener_task: asyncio.Task[None] | None = None
        # begin/finish of runs handled at the same time share one round trip.
        self._runs = ScriptBatcher(self._redis, self._failure)

    def _failure(self, doing: str, exc: RedisError) -> BackendError:
        return BackendError(f"Redis at {redact(self.url)} failed while {doing}: {exc}")

    # -- connection -----------------------------------------------------------------------

    def _redis(self) -> aioredis.Redis:
        # Created lazily so that the client belongs to the event loop that uses it.
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
            raise BackendError(f"Redis at {redact(self.url)} failed while {doing}: {exc}") from exc

    async def connect(self) -> None:
        client = self._redis()
        try:
            await client.ping()
            pipe = client.pipeline(transaction=False)
            for script in _SCRIPTS:
                pipe.script_load(script.source)
            await pipe.execute()
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
        self._connected = True
        if self._listeners:
            self._start_listener()

    async def close(self) -> None:
        self._connected = False
        task, self._listener_task = self._listener_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
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
                    evicts_keys=False,
                    persists=True,
                    detail=f"eviction and persistence unknown: CONFIG GET refused ({exc})",
                )
        config = {_text(k): _text(v) for reply in replies for k, v in reply.items()}
        policy = config.get("maxmemory-policy", "noeviction")
        save, aof = config.get("save", ""), config.get("appendonly", "no")
        detail = (
            f"maxmemory-policy={policy} maxmemory={config.get('maxmemory', '?')} "
            f"save={save!r} appendonly={aof}"
        )
        # volatile-* policies count as evicting too: run records, overlap marks and fire claims
        # carry TTLs, and losing them would run a fire twice.
        return BackendInfo(
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

    async def _eval(self, script: _Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        client = self._redis()
        with self._errors(f"running the {script.name} script"):
            try:
                return await client.evalsha(script.sha, len(keys), *keys, *args)
            except NoScriptError:
                # The script cache was emptied (restart, failover, SCRIPT FLUSH): load it again.
                await client.script_load(script.source)
                return await client.evalsha(script.sha, len(keys), *keys, *args)

    # -- wake-ups -------------------------------------------------------------------------

    def add_wakeup_listener(self, event: asyncio.Event) -> None:
        self._listeners.add(event)
        if self._connected:
            self._start_listener()

    def remove_wakeup_listener(self, event: asyncio.Event) -> None:
        self._listeners.discard(event)

    def _start_listener(self) -> None:
        if self._listener_task is not None and not self._listener_task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: connect() starts the listener
        self._listener_task = loop.create_task(
            self._listen(), name=f"jararaca-redis-wakeup:{self.namespace}"
        )

    def _wake_all(self) -> None:
        for event in list(self._listeners):
            event.set()

    async def _on_reconnect(self, _connection: object) -> None:
        # redis-py reconnects and resubscribes by itself after a short outage; a wake-up may
        # have been published meanwhile, so wake everyone once it is back.
        self._wake_all()

    async def _listen(self) -> None:
        """Hold a subscription to the wake-up channel; resubscribe with backoff on failure."""
        channel = self.keys.wakeup_channel
        failing, delay = False, 0.0
        while True:
            pubsub = self._redis().pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel)
                if pubsub.connection is not None:
                    pubsub.connection.register_connect_callback(self._on_reconnect)
                if failing:
                    log.info("wake-up channel on Redis %s is back", redact(self.url))
                failing, delay = False, 0.0
                # Wake-ups published before this subscription existed were lost: a spurious
                # wake-up costs a listener one look at the queue, a lost one a whole interval.
                self._wake_all()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._wake_all()
            except Exception as exc:  # whatever broke, wake-ups must come back
                if not failing:
                    log.warning(
                        "lost the wake-up channel on Redis %s (%s); retrying with backoff",
                        redact(self.url),
                        exc,
                    )
                failing = True
            finally:
                if pubsub.connection is not None:
                    pubsub.connection.deregister_connect_callback(self._on_reconnect)
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # unannotated upstream
            delay = min(_LISTEN_BACKOFF_CAP, max(0.1, delay * 2))
            await asyncio.sleep(delay)

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
    ) -> list[bool]:
        if not claims:
            return []
        args: list[Any] = [epoch_ms(now), epoch_ms(lease_until), FIRE_CLAIM_TTL_MS]
        for c in claims:
            args += [
                c.fire_id,
                c.action_id,
                epoch_ms(c.scheduled_at),
                c.envelope.message_id,
                c.envelope.to_json(),
            ]
        k = self.keys
        keys = [k.fire_claims, k.last_fires, k.inflight, k.inflight_env]
        answers = await self._eval(_CLAIM_FIRES, keys, args)
        return [bool(a) for a in answers]

    # -- in flight ------------------------------------------------------------------------

    async def ack_inflight(self, message_ids: Sequence[str]) -> None:
        if message_ids:
            keys = [self.keys.inflight, self.keys.inflight_env]
            await self._eval(_ACK_INFLIGHT, keys, list(message_ids))

    async def reclaim_inflight(
        self, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[Envelope]:
        if limit <= 0:
            return []
        keys = [self.keys.inflight, self.keys.inflight_env]
        args = [epoch_ms(now), epoch_ms(lease_until), limit]
        found = await self._eval(_RECLAIM_INFLIGHT, keys, args)
        return [Envelope.from_json(raw) for raw in found]

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
        # The script would read an unknown policy as the default: refuse it here instead.
        if payload_policy not in PAYLOAD_POLICIES or time_policy not in TIME_POLICIES:
            raise ConfigError(
                f"bad idempotency policies payload_policy={payload_policy!r} "
                f"time_policy={time_policy!r}: use payload_policy one of {PAYLOAD_POLICIES} "
                f"and time_policy one of {TIME_POLICIES}"
            )
        keys = [self.keys.delayed, self.keys.delayed_env]
        args = [
            task_id,
            epoch_ms(due),
            envelope.to_json(),
            payload_policy,
            time_policy,
            self.keys.wakeup_channel,
        ]
        await self._eval(_ENQUEUE_DELAYED, keys, args)

    async def enqueue_delayed_many(self, entries: Sequence[tuple[Envelope, datetime]]) -> None:
        if not entries:
            return
        args: list[Any] = [self.keys.wakeup_channel]
        for envelope, due in entries:
            args += [envelope.message_id, epoch_ms(due), envelope.to_json()]
        await self._eval(_ENQUEUE_DELAYED_MANY, [self.keys.delayed, self.keys.delayed_env], args)

    async def claim_due(
        self, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[Envelope]:
        if limit <= 0:
            return []
        k = self.keys
        keys = [k.delayed, k.delayed_env, k.inflight, k.inflight_env]
        found = await self._eval(_CLAIM_DUE, keys, [epoch_ms(now), epoch_ms(lease_until), limit])
        envelopes = []
        for raw in found:
            text = _text(raw)
            if text.startswith("!"):
                log.error("dropped an unreadable delayed entry: %.200s", text[1:])
                continue
            envelopes.append(Envelope.from_json(text))
        return envelopes

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

    def _run_keys(self, fire_id: str, overlap_key: str | None) -> list[str]:
        keys = [self.keys.run(fire_id)]
        if overlap_key is not None:
            keys.append(self.keys.overlap(overlap_key))
        return keys

    async def begin_run(
        self,
        fire_id: str,
        *,
        overlap_key: str | None,
        owner: str,
        now: datetime,
        lease_until: datetime,
        skip_on_overlap: bool = True,
        remember_for: timedelta = REMEMBER_DONE,
    ) -> RunStart:
        args = [
            fire_id,
            owner,
            epoch_ms(now),
            epoch_ms(lease_until),
            round(remember_for.total_seconds() * 1000),
            int(skip_on_overlap),
        ]
        status, attempt, holder = await self._runs.eval(
            _BEGIN_RUN, self._run_keys(fire_id, overlap_key), args
        )
        busy_until = from_epoch_ms(int(holder)) if holder else None
        return RunStart(RunStatus(_text(status)), int(attempt), busy_until)

    async def renew_run(
        self, fire_id: str, *, overlap_key: str | None, owner: str, lease_until: datetime
    ) -> bool:
        args = [fire_id, owner, epoch_ms(lease_until)]
        return bool(await self._eval(_RENEW_RUN, self._run_keys(fire_id, overlap_key), args))

    async def finish_run(
        self,
        fire_id: str,
        *,
        overlap_key: str | None,
        owner: str,
        now: datetime,
        remember_for: timedelta = REMEMBER_DONE,
    ) -> None:
        args = [fire_id, owner, epoch_ms(now), round(remember_for.total_seconds() * 1000)]
        await self._runs.eval(_FINISH_RUN, self._run_keys(fire_id, overlap_key), args)

    async def is_running(self, overlap_key: str, *, now: datetime) -> bool:
        with self._errors("reading an overlap mark"):
            lease = await self._redis().hget(self.keys.overlap(overlap_key), "lease")
        return lease is not None and int(lease) > epoch_ms(now)
