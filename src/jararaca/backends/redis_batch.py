"""Coalesce script calls made in the same event-loop turn into one Redis pipeline.

A worker handles many messages at once, and each makes two small script calls (begin and
finish its run). Sent one by one they cost a round trip and a driver call each; calls that
arrive in the same loop turn instead go out together as one pipeline (one round trip). Each
script stays atomic on its own: a pipeline without MULTI only batches the network traffic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError


class Script(Protocol):
    name: str
    sha: str
    source: bytes


class ScriptBatcher:
    def __init__(
        self,
        client: Callable[[], aioredis.Redis],
        failure: Callable[[str, RedisError], Exception],
    ) -> None:
        self._client = client
        self._failure = failure
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
        except RedisError as exc:
            for script, _, _, future in batch:
                if not future.done():
                    future.set_exception(self._failure(f"running the {script.name} script", exc))
            return
        for (script, _, _, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, RedisError):
                future.set_exception(self._failure(f"running the {script.name} script", result))
            else:
                future.set_result(result)
