"""The worker: consumes fires and messages, runs them, then settles them with the broker.

A fire of an exclusive action runs once: the backend's run record (a lease renewed while it
runs) refuses a duplicate delivery, applies the action's overlap policy when another run of
the action is alive (skip, buffer one, buffer all, cancel the other), and hands a dead
worker's fire to another after its lease. Messages that cannot be read are dead-lettered
with the reason; a failing handler retries through the delayed queue (never a hot requeue
loop) and dead-letters when its retries are spent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, AsyncExitStack
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial

from jararaca import wire
from jararaca.backends.base import Backend, OnOverlap
from jararaca.backends.records import Outcome, RunRecord
from jararaca.brokers.base import UNROUTED, Broker, Consumer, Delivery
from jararaca.clock import Clock, SystemClock
from jararaca.declarations import ScheduledRun
from jararaca.declarations.actions import OverlapPolicy
from jararaca.engines import Engines
from jararaca.errors import JararacaError
from jararaca.invoke import LeaseRenewer, call_exception_handler
from jararaca.lifecycle import Service, wait_or_hurry
from jararaca.messagebus.context import bind_sender_in_task
from jararaca.messagebus.publisher import Publisher
from jararaca.microservice import Container, Microservice
from jararaca.observability import tracing
from jararaca.observability.endpoint import MetricsConfig, open_endpoint, telemetry_for
from jararaca.observability.heartbeats import Heartbeat, process_id
from jararaca.observability.telemetry import NO_HANDLER, Telemetry
from jararaca.outage import Outage
from jararaca.registry import HandlerDef, action_queues, build_registry, check_groups
from jararaca.runs import RunGuard, WorkerStats, settle_quietly
from jararaca.settings import dedupe_seconds, max_message_bytes
from jararaca.settings import lease_seconds as default_lease_seconds
from jararaca.worker_messages import MessageHandling, replay_suffix

log = logging.getLogger("jararaca.worker")
# How long before a held fire's instant the worker asks the backend whether it may run it: its
# duplicate and overlap checks then take their round trip before the instant, not after it.
# Half the default dispatch lead (JARARACA_DISPATCH_LEAD_MS, 50 ms): at 5 ms, about one fire
# in 20 started 4-10 ms late on a slow 2-core machine, where the begin of the fires of one slot
# sometimes took 7-12 ms (2026-11-29). A fire the previous run of its action would hold
# back is asked about again at the instant (RunGuard.begin), so asking early changes no
# overlap decision.
BEGIN_AHEAD = timedelta(milliseconds=25)
# What the backend does with a fire of each overlap policy while the previous run is alive
# (allow_all has no overlap key: every fire starts).
_ON_OVERLAP: dict[OverlapPolicy, OnOverlap] = {
    "skip": "skip",
    "buffer_one": "wait_one",
    "buffer_all": "wait",
    "cancel_other": "cancel_other",
}


class Worker(Service, MessageHandling):
    """Runs an app's scheduled actions and message handlers delivered by the broker."""

    def __init__(
        self,
        app: Microservice,
        broker_url: str = "memory://",
        backend_url: str = "memory://",
        handler_names: Iterable[str] | None = None,
        groups: Iterable[str] | None = None,
        *,
        action_names: Iterable[str] | None = None,
        clock: Clock | None = None,
        lease_seconds: float | None = None,
        graceful_shutdown_seconds: float = 20.0,
        connect_timeout: float = 60.0,
        backend: Backend | None = None,
        broker: Broker | None = None,
        heartbeat: bool = True,
        metrics: MetricsConfig | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        """``metrics`` serves /metrics, /healthz and /readyz; ``telemetry`` is where runs are
        reported when the caller serves them itself (the embedded scheduler)."""
        super().__init__(graceful_shutdown_seconds=graceful_shutdown_seconds)
        registry = build_registry(app)
        groups = list(groups) if groups is not None else None
        check_groups(registry, groups)
        self.handlers = registry.select_handlers(handler_names, groups)
        self.actions = registry.select_actions(action_names, groups)
        self._actions_by_id = {a.action_id: a for a in self.actions}
        self.engines = Engines.build(broker_url, backend_url, broker=broker, backend=backend)
        self.broker: Broker = self.engines.broker
        self.backend: Backend = self.engines.backend
        self.clock = clock or SystemClock()
        self.lease = timedelta(seconds=lease_seconds or default_lease_seconds())
        self.max_message_bytes = max_message_bytes()
        self.dedupe = timedelta(seconds=dedupe_seconds())
        self.connect_timeout = connect_timeout
        self.owner = process_id()
        self.stats = WorkerStats()
        self.metrics_config = metrics
        self.telemetry = telemetry or telemetry_for(metrics)
        self.run_listeners: list[Callable[[ScheduledRun], None]] = []
        self.publisher = Publisher(self.backend, self.broker, self.clock)
        self._container = Container(app.providers)
        self._consumers: list[Consumer] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._deliveries = 0
        names = [h.handler_id for h in self.handlers] + [a.action_id for a in self.actions]
        self._heartbeat = (
            Heartbeat(
                self.backend,
                self.clock,
                process_id=self.owner,
                kind="worker",
                names=names,
                period=self.lease,
            )
            if heartbeat
            else None
        )
        self._renewer = LeaseRenewer(self.backend, self.owner, self.clock, self.lease)
        self._outage = Outage("the worker's backend or broker", log)
        # Said once when the broker connection drops and once when it is back: the worker
        # sees no error meanwhile (its consumers just receive nothing).
        self._broker_outage = Outage("the worker's connection to the broker", log)
        self._runs = RunGuard(
            self.backend,
            self.owner,
            self.clock,
            self.lease,
            self._renewer,
            self.stats,
            self._outage,
            self.telemetry,
        )

    # -- life cycle -----------------------------------------------------------------------

    async def _open(self, stack: AsyncExitStack) -> None:
        self.broker.add_connection_listener(self._on_broker_connection)
        stack.callback(self.broker.remove_connection_listener, self._on_broker_connection)
        # Served first: /healthz answers while the engines connect; /readyz once all started.
        readiness = await open_endpoint(
            stack,
            self.metrics_config,
            self.telemetry,
            self.engines,
            heartbeat=self._heartbeat,
            running=self.running_count,
        )
        await self.engines.open(stack, timeout=self.connect_timeout)
        controllers = {a.controller for a in self.actions} | {h.controller for h in self.handlers}
        for controller in controllers:
            self._container.get(controller)  # build now: a broken provider fails at start-up
        self._renewer.start()
        stack.push_async_callback(self._renewer.stop)
        if self._heartbeat is not None:
            await self._heartbeat.start(stack)
        queues = [h.queue for h in self.handlers] + action_queues(self.actions)
        await self.broker.declare([q for q in queues if not q.broadcast])
        stack.push_async_callback(self._cancel_consumers)
        for handler in self.handlers:
            self._consumers.append(
                await self.broker.consume(handler.queue, partial(self._on_delivery, handler))
            )
        for spec in action_queues(self.actions):
            self._consumers.append(
                await self.broker.consume(spec, partial(self._on_delivery, None))
            )
        self._consumers.append(await self.broker.consume(UNROUTED, self._on_unrouted))
        log.info(
            "worker %s consuming %d handler queue(s) and %d action queue(s)",
            self.owner,
            len(self.handlers),
            len(action_queues(self.actions)),
        )
        if readiness is not None:
            readiness.opened()

    async def drain(self, grace: float) -> None:
        """Stop intake, let in-flight runs finish for ``grace`` seconds, then cancel them: their
        leases are released and their messages go back to the queue, for another worker now."""
        await self._cancel_consumers()
        pending = set(self._tasks)
        if not pending:
            return
        log.info("waiting up to %.0f s for %d run(s) to finish", grace, len(pending))
        await wait_or_hurry(self._hurry, pending, grace)
        still = {task for task in pending if not task.done()}
        for task in still:
            task.cancel()
        if still:
            await asyncio.wait(still)

    async def _cancel_consumers(self) -> None:
        consumers, self._consumers = self._consumers, []
        for consumer in consumers:
            await consumer.cancel()

    def _on_broker_connection(self, connected: bool, reason: str) -> None:
        if connected:
            self._broker_outage.recovered()
        else:
            self._broker_outage.failed(ConnectionError(reason or "connection lost"))

    async def idle(self) -> None:
        """Wait until no delivery is being processed (for tests and the embedded harness)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    @property
    def progress(self) -> tuple[int, int, int]:
        """Changes whenever a delivery arrives, a run enters or leaves user code, or a
        delivery's processing ends: the embedded harness watches it to know the worker is
        quiet."""
        return (self._deliveries, self._runs.in_user_code, len(self._tasks))

    def running_count(self) -> int:
        """Runs and handlers in user code now (the ``jararaca_running`` gauge)."""
        return self._runs.in_user_code

    @property
    def only_user_code_runs(self) -> bool:
        """Whether every delivery in process is inside user code (nothing of the worker's own
        is left to do until user code returns)."""
        return len(self._tasks) == self._runs.in_user_code

    # -- deliveries -----------------------------------------------------------------------

    async def _on_unrouted(self, delivery: Delivery) -> None:
        topic = delivery.envelope.routing_key
        reason = f"unknown topic {topic!r}: no handler of this app is bound to it"
        await settle_quietly(lambda: self._dead_letter(delivery, reason, NO_HANDLER))

    async def _on_delivery(self, handler: HandlerDef | None, delivery: Delivery) -> None:
        self._deliveries += 1
        task = asyncio.create_task(self._process(handler, delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _process(self, handler: HandlerDef | None, delivery: Delivery) -> None:
        # Always run as a task of its own (_on_delivery): the binding ends with it.
        bind_sender_in_task(self.publisher)
        with _span(handler, delivery):
            try:
                # A fire published ahead of its instant (wire.NOT_BEFORE) waits here; a fire
                # asks the backend a little before the instant (see _run_fire), a message at it.
                not_before = _not_before(delivery.envelope)
                if not_before is not None:
                    ahead = BEGIN_AHEAD if handler is None else timedelta(0)
                    await self.clock.sleep_until(not_before - ahead)
                if handler is None:
                    await self._run_fire(delivery, not_before)
                else:
                    await self._run_message(handler, delivery)
            except asyncio.CancelledError:
                await settle_quietly(delivery.requeue)
                raise
            except JararacaError as exc:
                # Redis or RabbitMQ is down before the run could start: give the message back
                # after a backoff (not a hot requeue loop); it is delivered again later.
                await asyncio.sleep(self._outage.failed(exc))
                await settle_quietly(delivery.requeue)
            except Exception:
                log.exception("processing %s failed; requeueing it", delivery.envelope.message_id)
                await settle_quietly(delivery.requeue)

    async def _run_fire(self, delivery: Delivery, not_before: datetime | None) -> None:
        envelope = delivery.envelope
        action = self._actions_by_id.get(envelope.headers.get(wire.ACTION, ""))
        if action is None:
            unknown = envelope.headers.get(wire.ACTION)
            await self._dead_letter(
                delivery,
                f"unknown action {unknown!r}: this worker's app does not declare it",
                NO_HANDLER,
            )
            return
        try:
            scheduled_at = wire.parse_instant(envelope.headers[wire.SCHEDULED_AT])
        except (KeyError, ValueError):
            reason = "fire without a valid x-jararaca-scheduled-at header"
            await self._dead_letter(delivery, reason, NO_HANDLER)
            return
        spec = action.spec
        run_key = envelope.message_id + replay_suffix(envelope)
        overlap_key = None if spec.allow_overlap else action.action_id
        # Missed slots run one after another whatever the policy: they wait, never skip.
        catching_up = envelope.headers.get(wire.CATCH_UP) == "1"
        on_overlap: OnOverlap = "wait" if catching_up else _ON_OVERLAP.get(spec.overlap, "skip")
        if not spec.exclusive:  # every worker runs its own copy: identities are per worker
            run_key = f"{run_key}#{self.owner}"
            overlap_key = overlap_key and f"{overlap_key}#{self.owner}"
        now = self.clock.now()
        running = RunRecord(
            run_key,
            action.action_id,
            scheduled_at,
            "running",
            # Begun ahead, the run starts at the instant, and its history says so meanwhile.
            started_at=now if not_before is None else max(now, not_before),
            worker=self.owner,
        )
        start = await self._runs.begin(
            delivery,
            run_key,
            overlap_key,
            on_overlap=on_overlap,
            record=running,
            action=action.action_id,
            not_before=not_before,
        )
        if start is None:
            return
        if not_before is not None:
            # Begun BEGIN_AHEAD early so that its round trip is done by the instant; user code
            # still never starts before it, and starts as soon after it as the clock can.
            await self.clock.sleep_until(not_before, precise=True)
            running = replace(running, started_at=self.clock.now())
        running = replace(running, attempt=start.attempt)
        run = ScheduledRun(action.action_id, scheduled_at, envelope.message_id, start.attempt)
        self.stats.runs_started += 1
        for listener in self.run_listeners:
            listener(run)
        method = getattr(self._container.get(action.controller), action.attribute)
        call = partial(method, run) if spec.takes_run else method
        error = await self._runs.run_owned(
            run_key,
            overlap_key,
            call,
            spec.timeout,
            running,
            cancellable=spec.overlap == "cancel_other",
        )
        ended = running.ended("succeeded", finished_at=self.clock.now())
        if error is not None:
            outcome: Outcome = "failed"
            if isinstance(error, asyncio.CancelledError):
                outcome = "cancelled"
                self.stats.runs_cancelled += 1
                log.warning(
                    "action %s (fire %s) was cancelled: %s", action.action_id, run_key, error
                )
            else:
                self.stats.runs_failed += 1
                log.error("action %s (fire %s) failed: %r", action.action_id, run_key, error)
                if isinstance(error, TimeoutError):
                    outcome = "timed_out"
            ended = running.ended(outcome, finished_at=self.clock.now(), error=error)
            await call_exception_handler(spec.exception_handler, error, run, action.action_id)
        await self._runs.finish(delivery, run_key, overlap_key, record=ended)
        self.telemetry.run_ended(
            fire_id=run_key,
            action=action.action_id,
            outcome=ended.outcome,
            scheduled_at=scheduled_at,
            started_at=running.started_at or scheduled_at,
            finished_at=ended.finished_at or scheduled_at,
            attempt=start.attempt,
            error=error,
        )

    async def _dead_letter(self, delivery: Delivery, reason: str, handler: str) -> None:
        self.stats.dead_lettered += 1
        self.telemetry.count_message(handler, "dead_lettered")
        log.warning("dead-lettering message %s: %s", delivery.envelope.message_id, reason)
        await delivery.dead_letter(reason)


def _not_before(envelope: wire.Envelope) -> datetime | None:
    """The instant a fire was published ahead of; an unreadable mark runs now, not never."""
    marked = envelope.headers.get(wire.NOT_BEFORE)
    if not marked:
        return None
    try:
        return wire.parse_instant(marked)
    except ValueError:
        return None


def _span(handler: HandlerDef | None, delivery: Delivery) -> AbstractContextManager[None]:
    """The trace span of a delivery: ``jararaca.run`` of a fire, ``jararaca.handle`` of a
    message, in the trace its envelope carries."""
    envelope = delivery.envelope
    if handler is None:
        action = envelope.headers.get(wire.ACTION, "")
        return tracing.consuming("jararaca.run", envelope, {"jararaca.action": action})
    return tracing.consuming("jararaca.handle", envelope, {"jararaca.handler": handler.handler_id})
