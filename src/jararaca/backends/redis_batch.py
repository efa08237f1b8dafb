"""Coalesce script calls made in the same event-loop turn into one Redis pipeline.

A worker handles many messages at once, and each makes two small script calls (begin and
finish its run). Sent one by one they cost a round trip and a driver call each; calls that
arrive in the same loop turn instead go out together as one pipeline (one round trip), and
while a pipeline waits for its answer the next calls gather behind it. Each script stays
atomic on its own: a pipeline without MULTI only batches the network traffic.
On a Redis Cluster the pipeline sends each node its share (redis-py routes EVALSHA by its
keys; its ``evalsha`` pipeline method is refused there, so the command is sent by name).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisClusterException, RedisError

# What the client raises when Redis (or a Redis Cluster's routing) refuses or fails a call.
REDIS_FAILURES = (RedisError, RedisClusterException)
# What redis-py's asyncio cluster client raises besides, when a pipeline that failed (a master
# just died) closes the client's connections under the other calls still using them: an
# AttributeError on a connection whose writer is gone, a RuntimeError on a closed transport
# (tests/faults/test_redis_cluster_failover.py: a beat died of one).
CLUSTER_RACES = (AttributeError, RuntimeError)


def is_redis_failure(exc: BaseException, *, cluster: bool) -> bool:
    """Whether ``exc`` says Redis failed (back off and try again) rather than that a caller
    is wrong: what the client raises for a failed or refused call, and on a Redis Cluster one
    of CLUSTER_RACES when redis-py's own code raised it (the innermost frame of redis-py or
    jararaca it passed through is redis-py's), never a bug of ours of the same type."""
    if isinstance(exc, REDIS_FAILURES):
        return True
    return cluster and isinstance(exc, CLUSTER_RACES) and _raised_in_redis_py(exc)


def _raised_in_redis_py(exc: BaseException) -> bool:
    owner = ""
    frame = exc.__traceback__
    while frame is not None:
        package = str(frame.tb_frame.f_globals.get("__name__", "")).partition(".")[0]
        if package in ("redis", "jararaca"):  # asyncio's frames, deeper, do not count
            owner = package
        frame = frame.tb_next
    return owner == "redis"


# Pipelines waiting for their answers at once. While one is out, the calls that come in
# gather for the next: under load the batches grow (a pipeline costs the client far more
# than a call in it: ~5,000 against ~4,100 messages a second for one worker alone with no
# limit, 2026-11-28), and an idle worker still sends its call at once.
MAX_IN_FLIGHT = 1


class Script(Protocol):
    name: str
    sha: str
    source: bytes


class ScriptBatcher:
    def __init__(
        self,
        client: Callable[[], aioredis.Redis],
        failure: Callable[[str, Exception], Exception],
        *,
        cluster: bool = False,
        calls: contextlib.AbstractAsyncContextManager[Any] | None = None,
    ) -> None:
        self._client = client
        self._failure = failure
        self._cluster = cluster
        self._calls = calls or contextlib.nullcontext()
        self._pending: list[tuple[Script, Sequence[str], Sequence[Any], asyncio.Future[Any]]] = []
        self._flush_scheduled = False
        self._in_flight: set[asyncio.Task[None]] = set()

    async def eval(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        return await self.submit(script, keys, args)

    def submit(
        self, script: Script, keys: Sequence[str], args: Sequence[Any]
    ) -> asyncio.Future[Any]:
        """Queue a call; its future resolves once the pipeline went out. The call goes out
        even if the caller stops waiting (see ``RedisRunLeases.begin_run``)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((script, keys, args, future))
        self._schedule_flush(loop)
        return future

    def _schedule_flush(self, loop: asyncio.AbstractEventLoop) -> None:
        # Flush once the calls of this loop turn are all in; while MAX_IN_FLIGHT pipelines
        # wait for their answers, calls gather for the next one instead.
        if self._pending and not self._flush_scheduled and len(self._in_flight) < MAX_IN_FLIGHT:
            self._flush_scheduled = True
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._in_flight.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._schedule_flush(task.get_loop())

    async def _send(
        self, batch: list[tuple[Script, Sequence[str], Sequence[Any], asyncio.Future[Any]]]
    ) -> None:
        try:
            client = self._client()  # refused once the backend is closed: the callers hear it
            async with self._calls:
                results = await self._pipeline(client, [(s, k, a) for s, k, a, _ in batch])
            if any(isinstance(r, NoScriptError) for r in results):
                # The script cache was emptied (restart, failover, SCRIPT FLUSH): reload what
                # is missing and send those calls again.
                for script in {s.sha: s for s, *_ in batch}.values():
                    await client.script_load(script.source)
                again = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
                calls = [batch[i][:3] for i in again]
                async with self._calls:
                    retried = await self._pipeline(client, calls)
                for i, result in zip(again, retried, strict=True):
                    results[i] = result
        except asyncio.CancelledError:
            for *_, future in batch:
                future.cancel()
            raise
        except Exception as exc:
            # Every caller must hear of it, whatever it is, or its delivery would wait,
            # unacknowledged, for ever: a Redis failure as one, anything else as it is.
            redis_failed = is_redis_failure(exc, cluster=self._cluster)
            for script, _, _, future in batch:
                if not future.done():
                    doing = f"running the {script.name} script"
                    future.set_exception(self._failure(doing, exc) if redis_failed else exc)
            return
        self._settle(batch, results)

    def _settle(
        self,
        batch: list[tuple[Script, Sequence[str], Sequence[Any], asyncio.Future[Any]]],
        results: Sequence[Any],
    ) -> None:
        for (script, _, _, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, REDIS_FAILURES):
                future.set_exception(self._failure(f"running the {script.name} script", result))
            elif isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    @staticmethod
    async def _pipeline(
        client: aioredis.Redis, calls: Sequence[tuple[Script, Sequence[str], Sequence[Any]]]
    ) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for script, keys, args in calls:
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        return list(await pipe.execute(raise_on_error=False))
