"""``Scheduler``: the embedded mode, beat and worker in one process with no servers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from jararaca.clock import Clock, SystemClock
from jararaca.messagebus.publisher import bind_publisher
from jararaca.microservice import Microservice
from jararaca.scheduler.beat_worker import BeatWorker
from jararaca.urls import make_backend, make_broker
from jararaca.worker import Worker


class Scheduler:
    """Runs the app's actions and delayed messages in this process.

    By default state and messages live in memory (``memory://``); code in the same process can
    enqueue through ``connect("memory://")`` or, inside actions and handlers, directly."""

    def __init__(
        self,
        app: Microservice,
        interval: float = 1,
        backend_url: str = "memory://",
        scheduled_action_names: Iterable[str] | None = None,
        *,
        broker_url: str = "memory://",
        clock: Clock | None = None,
        lease_seconds: float | None = None,
        graceful_shutdown_seconds: float = 20.0,
    ) -> None:
        self.clock = clock or SystemClock()
        self.broker = make_broker(broker_url)
        self.backend = make_backend(backend_url, namespace=self.broker.namespace)
        names = list(scheduled_action_names) if scheduled_action_names is not None else None
        self.beat_worker = BeatWorker(
            app,
            interval,
            scheduled_action_names=names,
            clock=self.clock,
            lease_seconds=lease_seconds,
            backend=self.backend,
            broker=self.broker,
        )
        self.worker = Worker(
            app,
            action_names=names,
            clock=self.clock,
            lease_seconds=lease_seconds,
            graceful_shutdown_seconds=graceful_shutdown_seconds,
            backend=self.backend,
            broker=self.broker,
        )
        self.grace = graceful_shutdown_seconds

    async def start(self) -> None:
        await self.broker.connect()
        await self.backend.connect()
        await self.worker.start()
        await self.beat_worker.start()

    async def stop(self) -> None:
        await self.beat_worker.stop()
        await self.worker.stop()
        await self.backend.close()
        await self.broker.close()

    async def serve(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        await self.start()
        try:
            with bind_publisher(self.worker.publisher):
                await self.beat_worker.beat.serve(stop)
        finally:
            await self.stop()

    def run(self) -> None:
        """Run until SIGINT/SIGTERM (blocking, with its own event loop)."""
        from jararaca.runtime import run_service

        run_service(self.serve, grace=self.grace)
