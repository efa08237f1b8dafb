"""Coalesce script calls made in the same event-loop turn into one Redis pipeline.

A worker handles many messages at once, and each makes two small script calls (begin and
finish its run). Sent one by one they cost a round trip and a driver call each; calls that
arrive in the same loop turn instead go out together as one pipeline (one round trip). Each
script stays atomic on its own: a pipeline without MULTI only batches the network traffic.
A Redis Cluster client refuses scripts in a pipeline: there the calls go out concurrently,
one each (``pipelined=False``).
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
        pipelined: bool = True,
        calls: contextlib.AbstractAsyncContextManager[Any] | None = None,
    ) -> None:
        self._client = client
        self._failure = failure
        self._pipelined = pipelined
        self._calls = calls or contextlib.nullcontext()
        self._pending: list[tuple[Script, Sequence[str], Sequence[Any], asyncio.Future[Any]]] = []

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
        if len(self._pending) == 1:
            # Flush once the calls of this loop turn are all in.
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        asyncio.get_running_loop().create_task(self._send(batch))

    async def _send(
        self, batch: list[tuple[Script, Sequence[str], Sequence[Any], asyncio.Future[Any]]]
    ) -> None:
        client = self._client()
        try:
            if not self._pipelined:
                results = await asyncio.gather(
                    *(self._run_one(client, script, keys, args) for script, keys, args, _ in batch),
                    return_exceptions=True,
                )
                self._settle(batch, results)
                return
            pipe = client.pipeline(transaction=False)
            for script, keys, args, _ in batch:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            results = await pipe.execute(raise_on_error=False)
            if any(isinstance(r, NoScriptError) for r in results):
                # The script cache was emptied (restart, failover, SCRIPT FLUSH): reload what
                # is missing and send those calls again.
                for script in {s.sha: s for s, *_ in batch}.values():
                    await client.script_load(script.source)
                again = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
                pipe = client.pipeline(transaction=False)
                for i in again:
                    script, keys, args, _ = batch[i]
                    pipe.evalsha(script.sha, len(keys), *keys, *args)
                for i, result in zip(again, await pipe.execute(raise_on_error=False), strict=True):
                    results[i] = result
        except REDIS_FAILURES as exc:
            for script, _, _, future in batch:
                if not future.done():
                    future.set_exception(self._failure(f"running the {script.name} script", exc))
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

    async def _run_one(
        self, client: aioredis.Redis, script: Script, keys: Sequence[str], args: Sequence[Any]
    ) -> Any:
        async with self._calls:
            try:
                return await client.evalsha(script.sha, len(keys), *keys, *args)
            except NoScriptError:
                await client.script_load(script.source)
                return await client.evalsha(script.sha, len(keys), *keys, *args)
