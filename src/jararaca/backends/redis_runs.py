"""The Redis backend's run leases: begin, renew, release and finish runs (with the overlap
policies and the run history), each one atomic Lua script; begin and finish of runs handled in
the same event-loop turn share one pipeline (:mod:`redis_batch`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import redis.asyncio as aioredis

from jararaca.backends import redis_scripts as scripts
from jararaca.backends.base import REMEMBER_DONE, OnOverlap, RunStart, RunStatus
from jararaca.backends.records import RunRecord
from jararaca.backends.redis_batch import ScriptBatcher
from jararaca.backends.redis_keys import Keys
from jararaca.backends.redis_scripts import as_text
from jararaca.clock import duration_ms, epoch_ms, from_epoch_ms


class RedisRunLeases:
    """RunLeases over the client, keys and script runners of the backend it is mixed into."""

    keys: Keys
    history_limit: int
    _runs: ScriptBatcher
    _releases: set[asyncio.Future[None]]  # releases after a cancelled begin, kept alive

    def _redis(self) -> aioredis.Redis:
        raise NotImplementedError

    def _errors(self, doing: str) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    async def _eval(self, script: scripts.Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        raise NotImplementedError

    def _run_call(
        self, fire_id: str, overlap_key: str | None, record: RunRecord | None
    ) -> tuple[list[str], list[Any]]:
        """Keys and trailing arguments shared by the run scripts: the run, its overlap mark
        and its action's history when given (flags tell the script which are there)."""
        keys = [self.keys.run(fire_id)]
        if overlap_key is not None:
            keys.append(self.keys.overlap(overlap_key))
        flags: list[Any] = [int(overlap_key is not None), int(record is not None)]
        if record is None:
            return keys, flags
        keys.extend(self.keys.history(record.action_id))
        history = [record.to_json(), epoch_ms(record.scheduled_at), self.history_limit]
        return keys, flags + history

    async def begin_run(
        self,
        fire_id: str,
        *,
        overlap_key: str | None,
        owner: str,
        now: datetime,
        lease_until: datetime,
        on_overlap: OnOverlap = "skip",
        remember_for: timedelta = REMEMBER_DONE,
        record: RunRecord | None = None,
        ahead: bool = False,
    ) -> RunStart:
        keys, tail = self._run_call(fire_id, overlap_key, record)
        args = [
            fire_id,
            owner,
            epoch_ms(now),
            epoch_ms(lease_until),
            duration_ms(remember_for),
            on_overlap,
            epoch_ms(record.scheduled_at if record is not None else now),
            int(ahead),
            *tail,
        ]
        reply = self._runs.submit(scripts.BEGIN_RUN, keys, args)
        try:
            # Shielding a future (not a coroutine) costs no task on this hot path.
            status, attempt, holder = await asyncio.shield(reply)
        except asyncio.CancelledError:
            # Shutdown came while the batched call was on its way: it still runs, and a run it
            # started for us must be released, or it would hold its lease until it expires.
            reply.add_done_callback(
                lambda done: self._release_if_started(done, fire_id, overlap_key, owner, now)
            )
            raise
        busy_until = from_epoch_ms(int(holder)) if holder else None
        return RunStart(RunStatus(as_text(status)), int(attempt), busy_until)

    def _release_if_started(
        self,
        reply: asyncio.Future[Any],
        fire_id: str,
        overlap_key: str | None,
        owner: str,
        now: datetime,
    ) -> None:
        if reply.cancelled() or reply.exception() is not None:
            return
        if as_text(reply.result()[0]) == RunStatus.STARTED.value:
            release = self.release_run(fire_id, overlap_key=overlap_key, owner=owner, now=now)
            self._releases.add(task := asyncio.ensure_future(release))
            task.add_done_callback(self._releases.discard)

    async def renew_run(
        self, fire_id: str, *, overlap_key: str | None, owner: str, lease_until: datetime
    ) -> bool:
        keys, tail = self._run_call(fire_id, overlap_key, None)
        args = [fire_id, owner, epoch_ms(lease_until), *tail]
        return bool(await self._eval(scripts.RENEW_RUN, keys, args))

    async def cancel_requested(self, fire_id: str, *, overlap_key: str) -> bool:
        with self._errors("reading a cancel request"):
            holder, cancel = await self._redis().hmget(
                self.keys.overlap(overlap_key), ["fire", "cancel"]
            )
        return holder is not None and as_text(holder) == fire_id and cancel is not None

    async def release_run(
        self,
        fire_id: str,
        *,
        overlap_key: str | None,
        owner: str,
        now: datetime,
        record: RunRecord | None = None,
    ) -> None:
        # Renewing the lease to end now is the release: the record stays (with its attempt
        # count) and the next begin_run finds the lease over and takes the run over.
        keys, tail = self._run_call(fire_id, overlap_key, record)
        await self._eval(scripts.RENEW_RUN, keys, [fire_id, owner, epoch_ms(now), *tail])

    async def finish_run(
        self,
        fire_id: str,
        *,
        overlap_key: str | None,
        owner: str,
        now: datetime,
        remember_for: timedelta = REMEMBER_DONE,
        record: RunRecord | None = None,
    ) -> None:
        keys, tail = self._run_call(fire_id, overlap_key, record)
        args = [fire_id, owner, epoch_ms(now), duration_ms(remember_for), *tail]
        await self._runs.eval(scripts.FINISH_RUN, keys, args)
