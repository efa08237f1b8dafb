"""``BeatWorker`` (alias ``SchedulerV2``): the distributed beat as a service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from jararaca.backends.base import Backend
from jararaca.backends.memory import MemoryBackend
from jararaca.brokers.base import Broker
from jararaca.clock import Clock, SystemClock
from jararaca.microservice import Microservice
from jararaca.registry import action_queues, build_registry
from jararaca.runtime import close_quietly, connect_services, warn_if_volatile
from jararaca.scheduler.beat import Beat
from jararaca.settings import lease_seconds as default_lease_seconds
from jararaca.urls import make_backend, make_broker, redact

log = logging.getLogger("jararaca.beat")


class BeatWorker:
    """Publishes the app's due fires and delayed messages; workers run them."""

    def __init__(
        self,
        app: Microservice,
        interval: float = 1,
        backend_url: str = "memory://",
        broker_url: str = "memory://",
        scheduled_action_names: Iterable[str] | None = None,
        *,
        clock: Clock | None = None,
        lease_seconds: float | None = None,
        graceful_shutdown_seconds: float = 20.0,
        connect_timeout: float = 60.0,
        backend: Backend | None = None,
        broker: Broker | None = None,
    ) -> None:
        registry = build_registry(app)
        self.app = app
        self.registry = registry
        self.actions = registry.select_actions(scheduled_action_names)
        self.broker = broker or make_broker(broker_url)
        self.backend = backend or make_backend(backend_url, namespace=self.broker.namespace)
        self.grace = graceful_shutdown_seconds
        self.connect_timeout = connect_timeout
        self._owns_connections = backend is None and broker is None
        self._urls = (redact(broker_url), redact(backend_url))
        self.beat = Beat(
            self.actions,
            self.backend,
            self.broker,
            clock or SystemClock(),
            interval=interval,
            lease_seconds=lease_seconds or default_lease_seconds(),
        )

    async def start(self) -> None:
        if self._owns_connections:
            await connect_services(self.broker, self.backend, timeout=self.connect_timeout)
        # Declare every queue of the app, so that what the beat publishes before any worker
        # started waits in its queue instead of being unroutable.
        queues = [h.queue for h in self.registry.handlers] + action_queues(self.registry.actions)
        await self.broker.declare([q for q in queues if not q.broadcast])
        if not isinstance(self.backend, MemoryBackend):
            await warn_if_volatile(self.backend)
        await self.beat.start()
        log.info(
            "beat started with %d action(s); broker %s, backend %s",
            len(self.actions),
            *self._urls,
        )

    async def stop(self) -> None:
        await self.beat.stop()
        if self._owns_connections:
            await self.backend.close()
            await self.broker.close()

    async def serve(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        try:
            await self.start()
        except BaseException:
            if self._owns_connections:
                await close_quietly(self.backend.close, self.broker.close)
            raise
        try:
            await self.beat.serve(stop)
        finally:
            await self.stop()

    def run(self) -> None:
        """Run until SIGINT/SIGTERM (blocking, with its own event loop)."""
        from jararaca.runtime import run_service

        run_service(self.serve, grace=self.grace)


SchedulerV2 = BeatWorker
