"""``BeatWorker`` (alias ``SchedulerV2``): the distributed beat as a service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from contextlib import AsyncExitStack
from datetime import timedelta

from jararaca.backends.base import Backend
from jararaca.brokers.base import Broker
from jararaca.clock import Clock, SystemClock
from jararaca.engines import Engines, warn_if_volatile
from jararaca.lifecycle import Service
from jararaca.microservice import Microservice
from jararaca.observability.endpoint import MetricsConfig, open_endpoint, telemetry_for
from jararaca.observability.heartbeats import Heartbeat, process_id
from jararaca.observability.telemetry import Telemetry
from jararaca.redaction import redact
from jararaca.registry import action_queues, build_registry, check_groups
from jararaca.scheduler.beat import Beat
from jararaca.settings import lease_seconds as default_lease_seconds

log = logging.getLogger("jararaca.beat")


class BeatWorker(Service):
    """Publishes the app's due fires and delayed messages; workers run them."""

    def __init__(
        self,
        app: Microservice,
        interval: float = 1,
        backend_url: str = "memory://",
        broker_url: str = "memory://",
        scheduled_action_names: Iterable[str] | None = None,
        *,
        groups: Iterable[str] | None = None,
        clock: Clock | None = None,
        lease_seconds: float | None = None,
        graceful_shutdown_seconds: float = 20.0,
        connect_timeout: float = 60.0,
        backend: Backend | None = None,
        broker: Broker | None = None,
        heartbeat: bool = True,
        metrics: MetricsConfig | None = None,
        telemetry: Telemetry | None = None,
        dispatch_lead: float | None = None,
    ) -> None:
        """``metrics`` serves /metrics, /healthz and /readyz; ``telemetry`` is where fires are
        reported when the caller serves them itself (the embedded scheduler)."""
        super().__init__(graceful_shutdown_seconds=graceful_shutdown_seconds)
        self.registry = build_registry(app)
        group_list = list(groups) if groups is not None else None  # read once: may be an iterator
        check_groups(self.registry, group_list)
        self.actions = self.registry.select_actions(scheduled_action_names, group_list)
        self.engines = Engines.build(broker_url, backend_url, broker=broker, backend=backend)
        self.connect_timeout = connect_timeout
        # What the log line names: the engines' own kind when they were handed in (embedded).
        self._urls = (
            redact(broker_url) if broker is None else f"in-process ({type(broker).__name__})",
            redact(backend_url) if backend is None else f"shared ({type(backend).__name__})",
        )
        clock = clock or SystemClock()
        lease = lease_seconds or default_lease_seconds()
        self.metrics_config = metrics
        self.telemetry = telemetry or telemetry_for(metrics)
        self.beat = Beat(
            self.actions,
            self.engines.backend,
            self.engines.broker,
            clock,
            interval=interval,
            lease_seconds=lease,
            dispatch_lead=dispatch_lead,
            telemetry=self.telemetry,
        )
        self._heartbeat = (
            Heartbeat(
                self.engines.backend,
                clock,
                process_id=process_id(),
                kind="beat",
                names=[a.action_id for a in self.actions],
                period=timedelta(seconds=lease),
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
        # Served first: /healthz answers while the engines connect; /readyz once all started.
        readiness = await open_endpoint(
            stack,
            self.metrics_config,
            self.telemetry,
            self.engines,
            heartbeat=self._heartbeat,
        )
        await self.engines.open(stack, timeout=self.connect_timeout)
        # Declare every queue of the app, so that what the beat publishes before any worker
        # started waits in its queue instead of being unroutable.
        registry = self.registry
        queues = [h.queue for h in registry.handlers] + action_queues(registry.actions)
        await self.broker.declare([q for q in queues if not q.broadcast])
        await warn_if_volatile(self.backend)
        await self.beat.start()
        stack.push_async_callback(self.beat.stop)
        if self._heartbeat is not None:
            await self._heartbeat.start(stack)
        log.info(
            "beat started with %d action(s); broker %s, backend %s",
            len(self.actions),
            *self._urls,
        )
        if readiness is not None:
            readiness.opened()

    async def _serve(self, stop: asyncio.Event) -> None:
        await self.beat.serve(stop)


SchedulerV2 = BeatWorker
