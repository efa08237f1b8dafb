"""Redis state backend (``redis://``, ``rediss://``, ``unix://``, ``redis+sentinel://``: see
:mod:`jararaca.backends.redis_connect` for the client each URL gets).

Every state change is one Lua script from ``backends/lua/`` (loaded with SCRIPT LOAD, called by
EVALSHA, reloaded on NOSCRIPT), so it is atomic across any number of beats and workers. Times
are passed in as epoch milliseconds: scripts never read the server clock, so tests control
time. Batched operations take their items as ARGV and cost one round trip whatever their size.
Key names live in :mod:`jararaca.backends.redis_keys`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, RedisError, ResponseError

from jararaca.backends import redis_scripts as scripts
from jararaca.backends.base import (
    BackendInfo,
    ClaimResult,
    FireClaim,
)
from jararaca.backends.redis_batch import ScriptBatcher, is_redis_failure
from jararaca.backends.redis_connect import (
    MAX_CONNECTIONS,
    Closer,
    check_url,
    is_cluster,
    open_client,
)
from jararaca.backends.redis_control import RedisControl, RedisSchedules
from jararaca.backends.redis_keys import Keys, scan_pattern
from jararaca.backends.redis_queue import RedisDelayedQueue
from jararaca.backends.redis_runs import RedisRunLeases
from jararaca.backends.redis_scripts import as_text
from jararaca.backends.redis_wakeup import WakeupChannel
from jararaca.clock import epoch_ms, from_epoch_ms
from jararaca.errors import BackendError, ConfigError, CredentialsError
from jararaca.redaction import redact
from jararaca.settings import run_history

log = logging.getLogger(__name__)

FIRE_CLAIM_TTL_MS = 3_600_000  # the protocol promises to remember a claim for an hour
# The scripts use ZRANGE ... BYSCORE (6.2) and the backend relies on its semantics.
MIN_REDIS_VERSION = (6, 2)


_CLAIM_ANSWERS = (ClaimResult.TAKEN, ClaimResult.CLAIMED, ClaimResult.PAUSED)


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


class RedisBackend(RedisDelayedQueue, RedisRunLeases, RedisControl, RedisSchedules):
    """The :class:`~jararaca.backends.base.Backend` protocols on one Redis client and pool."""

    def __init__(self, url: str, *, namespace: str) -> None:
        self.url = url
        self.namespace = namespace
        options = check_url(url)
        self.keys = Keys.for_namespace(namespace, options.shards)
        self._wait_replicas = options.wait_replicas
        self._replica_warning_at = -math.inf
        self.history_limit = run_history()
        self._cluster = is_cluster(url)
        self._client: aioredis.Redis | None = None
        self._close_more: Closer | None = None
        self._connected = False
        self._closed = False
        self._wakeups = WakeupChannel(
            self._redis,
            self.keys.wakeup_channel,
            redact(url),
            name=f"jararaca-redis-wakeup:{namespace}",
        )
        # begin/finish of runs handled at the same time share one round trip.
        # A Redis Cluster client fails a call (instead of waiting) once it holds 100
        # connections to a node: bound how many script calls are under way at once.
        self._calls: contextlib.AbstractAsyncContextManager[Any] = (
            asyncio.Semaphore(MAX_CONNECTIONS) if self._cluster else contextlib.nullcontext()
        )
        self._runs = ScriptBatcher(
            self._redis, self._failure, cluster=self._cluster, calls=self._calls
        )
        self._releases: set[asyncio.Future[None]] = set()

    def _failure(self, doing: str, exc: Exception) -> BackendError:
        return BackendError(f"Redis at {redact(self.url)} failed while {doing}: {exc}")

    # -- connection -----------------------------------------------------------------------

    def _redis(self) -> aioredis.Redis:
        # Created lazily so that the client belongs to the event loop that uses it.
        if self._closed:
            # A late call (a batched flush, a caller holding on past close) must not open a
            # pool that nobody would close.
            raise BackendError(f"the backend for {redact(self.url)} is closed")
        if self._client is None:
            self._client, self._close_more = open_client(self.url)
        return self._client

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            if not is_redis_failure(exc, cluster=self._cluster):
                raise
            raise self._failure(doing, exc) from exc

    async def connect(self) -> None:
        self._closed = False
        client = self._redis()
        try:
            server = await client.info("server")
            await scripts.load_all(client, pipelined=not self._cluster)
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
        close_more, self._close_more = self._close_more, None
        if client is not None:
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()
        if close_more is not None:
            await close_more()

    async def info(self) -> BackendInfo:
        parameters = ("maxmemory-policy", "maxmemory", "save", "appendonly")
        with self._errors("reading its configuration"):
            try:
                replies = await self._config_get(parameters)
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

    async def _config_get(self, parameters: Sequence[str]) -> list[dict[Any, Any]]:
        client = self._redis()
        if self._cluster:  # CONFIG GET has no key to route a cluster pipeline by
            return [await client.config_get(parameter) for parameter in parameters]
        pipe = client.pipeline(transaction=False)
        for parameter in parameters:
            pipe.config_get(parameter)
        return list(await pipe.execute())

    async def delete_namespace(self) -> None:
        """Delete every key of this namespace (for tests and operators; it uses SCAN)."""
        client = self._redis()
        with self._errors("deleting the namespace's keys"):
            for shard in range(len(self.keys.shards)):
                # One shard's keys share a hash tag, so one UNLINK may take many of them on a
                # Redis Cluster too (it refuses one over several slots).
                batch: list[bytes] = []
                pattern = scan_pattern(self.namespace, shard)
                async for key in client.scan_iter(match=pattern, count=1000):
                    batch.append(key)
                    if len(batch) >= 500:
                        await client.unlink(*batch)
                        batch.clear()
                if batch:
                    await client.unlink(*batch)

    async def _eval(
        self,
        script: scripts.Script,
        keys: Sequence[str],
        args: Sequence[Any],
        *,
        replicated: bool = False,
    ) -> Any:
        """Run a script; ``replicated`` (claims and enqueues) waits for ``?wait_replicas``."""
        with self._errors(f"running the {script.name} script"):
            async with self._calls:
                if not (replicated and self._wait_replicas):
                    return await scripts.run(self._redis(), script, keys, args)
                answer, acknowledged = await scripts.run_replicated(
                    self._redis(), script, keys, args, replicas=self._wait_replicas
                )
        if acknowledged < self._wait_replicas:
            self._short_of_replicas(script, acknowledged)
        return answer

    def _short_of_replicas(self, script: scripts.Script, acknowledged: int) -> None:
        # The write is done on the master either way; failing it now would only make the
        # caller write it again. Said once a minute, not once per write.
        now = time.monotonic()
        if now - self._replica_warning_at >= 60:
            self._replica_warning_at = now
            log.warning(
                "Redis at %s: a %s write reached %d of the %d replica(s) wait_replicas asks "
                "for within %d ms; it stands on the master alone until they catch up",
                redact(self.url),
                script.name,
                acknowledged,
                self._wait_replicas,
                scripts.WAIT_TIMEOUT_MS,
            )

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
        answers = await self._eval(scripts.CLAIM_FIRES, keys, args, replicated=True)
        return [_CLAIM_ANSWERS[int(a)] for a in answers]

    # -- runs -----------------------------------------------------------------------------

    async def is_running(self, overlap_key: str, *, now: datetime) -> bool:
        with self._errors("reading an overlap mark"):
            lease = await self._redis().hget(self.keys.overlap(overlap_key), "lease")
        return lease is not None and int(lease) > epoch_ms(now)
