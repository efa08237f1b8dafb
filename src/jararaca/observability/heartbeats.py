"""Heartbeats: every beat, worker and embedded scheduler records itself in the backend each
lease period, so ``Control.processes()`` and ``jararaca status`` can list the live ones and
mark as gone a process silent for three periods. A record expires on its own (a process
killed with SIGKILL cannot say goodbye); a clean stop removes it at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import timedelta
from importlib.metadata import PackageNotFoundError, version

from jararaca.backends.base import Processes
from jararaca.backends.records import ProcessKind, ProcessRecord
from jararaca.clock import Clock
from jararaca.errors import JararacaError

log = logging.getLogger("jararaca.heartbeat")
# A process unheard of for this many periods is shown as gone; its record lives a little
# longer so that `status` can still say "gone" rather than forget it at once.
GONE_AFTER_PERIODS = 3
# A heartbeat lists this many of its process's actions or handlers, and counts the rest.
HEARTBEAT_NAMES = 100
EXPIRE_AFTER_PERIODS = 10


def process_id() -> str:
    """``<host>-<pid>-<random>``: unique even when a pid is reused or hosts share names."""
    return f"{socket.gethostname()}-{os.getpid()}-{random.getrandbits(32):08x}"


def jararaca_version() -> str:
    try:
        return version("jararaca")
    except PackageNotFoundError:
        return "unknown"


class Heartbeat:
    """One process's heartbeat loop."""

    def __init__(
        self,
        backend: Processes,
        clock: Clock,
        *,
        process_id: str,
        kind: ProcessKind,
        names: Sequence[str],
        period: timedelta,
    ) -> None:
        self.backend = backend
        self.clock = clock
        self.period = period
        now = clock.now()
        self.record = ProcessRecord(
            process_id=process_id,
            kind=kind,
            host=socket.gethostname(),
            pid=os.getpid(),
            version=jararaca_version(),
            started_at=now,
            last_seen=now,
            names=tuple(names[:HEARTBEAT_NAMES]),
            period_seconds=period.total_seconds(),
            more_names=max(0, len(names) - HEARTBEAT_NAMES),
        )
        self._task: asyncio.Task[None] | None = None

    def advertise(self, metrics_address: str) -> None:
        """Say in every heartbeat where this process serves its metrics and probes."""
        self.record = replace(self.record, metrics_address=metrics_address)

    async def start(self, stack: AsyncExitStack) -> None:
        """Beat once now (a backend that refuses fails the start-up), then every period."""
        await self._beat()
        self._task = asyncio.create_task(
            self._loop(), name=f"jararaca-heartbeat:{self.record.kind}"
        )
        stack.push_async_callback(self.stop)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(JararacaError):
            await self.backend.forget_process(self.record.process_id)

    async def _beat(self) -> None:
        self.record = self.record.seen(self.clock.now())
        await self.backend.heartbeat(self.record, keep=self.period * EXPIRE_AFTER_PERIODS)

    async def _loop(self) -> None:
        while True:
            # A duration, not an instant: the real loop clock, whatever clock the app uses.
            await asyncio.sleep(self.period.total_seconds())
            try:
                await self._beat()
            except JararacaError as exc:  # an outage: the service's own logs say so
                log.debug("heartbeat not recorded: %s", exc)
