"""``Scheduler``: the embedded mode, beat and worker in one process with no servers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from contextlib import AsyncExitStack

from jararaca.backends.base import Backend
from jararaca.brokers.base import Broker
from jararaca.clock import Clock, SystemClock
from jararaca.engines import Engines, embedded_engines
from jararaca.lifecycle import Service
from jararaca.microservice import Microservice
from jararaca.observability.endpoint import MetricsConfig, open_endpoint, telemetry_for
from jararaca.observability.heartbeats import Heartbeat
from jararaca.scheduler.beat_worker import BeatWorker
from jararaca.worker import Worker


class Scheduler(Service):
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
        groups: Iterable[str] | None = None,
        broker_url: str = "memory://",
        clock: Clock | None = None,
        lease_seconds: float | None = None,
        graceful_shutdown_seconds: float = 20.0,
        connect_timeout: float = 60.0,
        backend: Backend | None = None,
        broker: Broker | None = None,
        heartbeat: bool = True,
        metrics: MetricsConfig | None = None,
        dispatch_lead: float | None = None,
    ) -> None:
        super().__init__(graceful_shutdown_seconds=graceful_shutdown_seconds)
        self.clock = clock or SystemClock()
        built = Engines.build(broker_url, backend_url, broker=broker, backend=backend)
        # On SQLite: what the beat hands the in-memory broker stays on disk until settled.
        self.engines, self._handoff = embedded_engines(built)
        self.connect_timeout = connect_timeout
        self.metrics_config = metrics
        # One telemetry for beat and worker: one set of metrics for the process.
        self.telemetry = telemetry_for(metrics)
        names = list(scheduled_action_names) if scheduled_action_names is not None else None
        group_list = list(groups) if groups is not None else None
        # Beat and worker are handed this scheduler's engines: only the scheduler opens and
        # closes them.
        backend, broker = self.engines.backend, self.engines.broker
        self.beat_worker = BeatWorker(
            app,
            interval,
            scheduled_action_names=names,
            groups=group_list,
            clock=self.clock,
            lease_seconds=lease_seconds,
            backend=backend,
            broker=broker,
            heartbeat=False,  # one record for the whole process, below
            dispatch_lead=dispatch_lead,
            telemetry=self.telemetry,
        )
        self.worker = Worker(
            app,
            groups=group_list,
            action_names=names,
            clock=self.clock,
            lease_seconds=lease_seconds,
            graceful_shutdown_seconds=graceful_shutdown_seconds,
            backend=backend,
            broker=broker,
            heartbeat=False,
            telemetry=self.telemetry,
        )
        self._heartbeat = (
            Heartbeat(
                backend,
                self.clock,
                process_id=self.worker.owner,
                kind="scheduler",
                names=[a.action_id for a in self.beat_worker.actions],
                period=self.worker.lease,
            )
            if heartbeat
            else None
        )

    @property
    def broker(self) -> Broker:
        return self.engines.broker

    @property
    def backend(self) -> Backend:
        return self.engines.backend

    async def _open(self, stack: AsyncExitStack) -> None:
        if self._handoff is not None:
            self._handoff.lock(stack)  # one scheduler per SQLite file, released last
        # Served first: /healthz answers while the engines connect; /readyz once all started.
        readiness = await open_endpoint(
            stack,
            self.metrics_config,
            self.telemetry,
            self.engines,
            heartbeat=self._heartbeat,
            running=self.worker.running_count,
        )
        await self.engines.open(stack, timeout=self.connect_timeout)
        if self._handoff is not None:
            await self._handoff.take_over(stack, now=self.clock.now())
        await self.worker.start()
        stack.push_async_callback(self.worker.stop)
        await self.beat_worker.start()
        stack.push_async_callback(self.beat_worker.stop)
        if self._heartbeat is not None:
            await self._heartbeat.start(stack)
        if readiness is not None:
            readiness.opened()

    async def _serve(self, stop: asyncio.Event) -> None:
        await self.beat_worker.beat.serve(stop)

    async def drain(self, grace: float) -> None:
        await self.beat_worker.stop()  # no new fires while the worker drains
        await self.worker.drain(grace)

    def hurry(self) -> None:
        super().hurry()
        self.worker.hurry()
