"""``Control``: see and steer an app's schedules, runs, delayed messages and dead letters.

Everything goes through the backend's control protocols (:class:`ControlStore`) and, for dead
letters only, the broker; nothing here runs user code or talks to the beats directly. Trigger
and backfill put fires into the backend's due set, which every beat (and the embedded
scheduler) dispatches at once, so they work the same in both modes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

from jararaca import settings
from jararaca.backends.base import Backend, FireClaim
from jararaca.backends.records import OUTCOMES, ScheduleRecord
from jararaca.brokers.base import Broker
from jararaca.clock import Clock, SystemClock
from jararaca.control.models import (
    DeadLetterInfo,
    DelayedInfo,
    ProcessInfo,
    RunInfo,
    ScheduleInfo,
)
from jararaca.control.schedules import new_schedule
from jararaca.control.views import (
    backfill_slots,
    check_limit,
    dead_letter_info,
    delayed_info,
    dynamic_schedule_info,
    is_internal_task,
    resolve_action,
    schedule_info,
    target_id,
    target_plan,
)
from jararaca.engines import connect_with_retry, make_backend, make_broker
from jararaca.errors import ConfigError
from jararaca.messagebus.message import Message
from jararaca.microservice import Microservice
from jararaca.observability.heartbeats import GONE_AFTER_PERIODS
from jararaca.registry import ActionDef, build_registry
from jararaca.scheduler.fires import fire_envelope, fire_id, manual_fire_id
from jararaca.urls import DEFAULT_EXCHANGE, parse_broker_url

RECENT_RUNS = 20  # runs read per action for last_run, running and describe
ENQUEUE_BATCH = 1_000  # fires per enqueue_fires call: a 10,000-slot backfill is not one call


class Control:
    """An operator's handle on a running app (``async with Control(app, backend_url=...)``).

    The backend's namespace is the broker's (its URL's ``exchange``, ``jararaca`` by default),
    as for the beat and the worker. ``broker_url`` (or ``broker``) is needed only by the dead
    letter methods, and the broker is built and connected the first time one of them is
    called: steering schedules never depends on RabbitMQ being reachable. Engines handed in
    (``backend=``, ``broker=``) are the caller's to connect and close."""

    def __init__(
        self,
        app: Microservice,
        backend_url: str = "memory://",
        broker_url: str | None = None,
        *,
        backend: Backend | None = None,
        broker: Broker | None = None,
        clock: Clock | None = None,
        connect_timeout: float = 0.0,
    ) -> None:
        self.registry = build_registry(app)
        self._backend_url = backend_url
        self._broker_url = broker_url
        self._given_backend = backend
        self._given_broker = broker
        self.clock: Clock = clock or SystemClock()
        self._connect_timeout = connect_timeout
        self._stack: AsyncExitStack | None = None
        self._backend: Backend | None = None
        self._broker: Broker | None = broker  # one handed in is the caller's to connect
        self._broker_lock = asyncio.Lock()

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        stack = AsyncExitStack()
        try:
            namespace = self._namespace()
            backend = self._given_backend or make_backend(self._backend_url, namespace=namespace)
            if self._given_backend is None:  # one handed in is the caller's to connect
                deadline = asyncio.get_running_loop().time() + self._connect_timeout
                await connect_with_retry(backend.connect, "the backend", deadline=deadline)
                stack.push_async_callback(backend.close)
        except BaseException:
            await stack.aclose()
            raise
        self._stack, self._backend = stack, backend
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        self._broker = self._given_broker  # a built one is closed with the stack
        self._backend = None  # closed with the stack: no use after the block
        if stack is not None:
            await stack.aclose()

    def _namespace(self) -> str:
        if self._given_broker is not None:
            return self._given_broker.namespace
        if self._broker_url is not None:
            return parse_broker_url(self._broker_url).exchange
        return DEFAULT_EXCHANGE

    @property
    def namespace(self) -> str:
        return self.backend.namespace

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            raise RuntimeError("use Control inside `async with Control(...) as control:`")
        return self._backend

    async def _connected_broker(self, what: str) -> Broker:
        """The broker, built from ``broker_url`` and connected on first use: only the dead
        letter methods need it, so steering schedules never waits for RabbitMQ."""
        if self._broker_url is None and self._given_broker is None:
            raise ConfigError(
                f"{what} needs the broker, where dead letters live: pass broker_url= to "
                "Control (on the command line --broker-url, or JARARACA_BROKER_URL / "
                "BROKER_URL), e.g. amqp://guest:guest@localhost:5672/?exchange=jararaca"
            )
        async with self._broker_lock:
            if self._broker is None:
                assert self._stack is not None and self._broker_url is not None
                broker = make_broker(self._broker_url)
                deadline = asyncio.get_running_loop().time() + self._connect_timeout
                await connect_with_retry(broker.connect, "the broker", deadline=deadline)
                self._stack.push_async_callback(broker.close)
                self._broker = broker
        return self._broker

    # -- schedules ------------------------------------------------------------------------

    def action(self, name: str) -> ActionDef:
        """The action with this id, ``name=`` or method name (``ConfigError`` if none)."""
        return resolve_action(self.registry.actions, name)

    async def _target(self, name: str) -> ActionDef | ScheduleRecord:
        """A decorated action, or else a dynamic schedule of that id; the error lists both."""
        try:
            return self.action(name)
        except ConfigError as unknown:
            schedules = await self.backend.dynamic_schedules()
            for schedule in schedules:
                if schedule.schedule_id == name.strip():
                    return schedule
            dynamic = [s.schedule_id for s in schedules]
            if not dynamic:
                raise
            raise ConfigError(f"{unknown}; dynamic schedules: {', '.join(dynamic)}") from None

    async def schedules(self) -> list[ScheduleInfo]:
        """Every action and dynamic schedule: declaration, next 5 fires, pause, last run and
        running count."""
        paused = await self.backend.paused()
        found = [await self._schedule(a, 5, paused, with_runs=False) for a in self._actions()]
        for schedule in await self.backend.dynamic_schedules():
            found.append(await self._schedule(schedule, 5, paused, with_runs=False))
        return found

    async def describe(self, action: str, next: int = 10) -> ScheduleInfo:
        """One action as in :meth:`schedules`, with its next ``next`` fires and last runs."""
        if next < 0:
            raise ConfigError(f"next must be >= 0, got {next}")
        target = await self._target(action)
        return await self._schedule(target, next, await self.backend.paused(), with_runs=True)

    def _actions(self) -> Sequence[ActionDef]:
        return self.registry.actions

    async def _schedule(
        self,
        target: ActionDef | ScheduleRecord,
        count: int,
        paused: dict[str, str],
        *,
        with_runs: bool,
    ) -> ScheduleInfo:
        now = self.clock.now()
        if isinstance(target, ScheduleRecord):
            ident, base = target.schedule_id, dynamic_schedule_info(target, now, count)
        else:
            ident, base = target.action_id, schedule_info(target, now, count)
        records = await self.backend.run_history(ident, limit=RECENT_RUNS)
        runs = [RunInfo.from_record(r) for r in records]
        updates: dict[str, Any] = {
            "paused": ident in paused,
            "paused_reason": paused.get(ident) or None,
            "last_run": runs[0] if runs else None,
            "running": sum(1 for r in runs if r.outcome == "running"),
        }
        if with_runs:
            updates["runs"] = runs
        return base.model_copy(update=updates)

    async def pause(self, action: str, reason: str | None = None) -> None:
        """Pause from the next slot on, in every beat; paused slots are recorded
        ``skipped_paused`` and never replayed."""
        await self.backend.pause(target_id(await self._target(action)), reason or "")

    async def resume(self, action: str) -> bool:
        """Whether the action was paused."""
        return await self.backend.resume(target_id(await self._target(action)))

    async def trigger(self, action: str) -> str:
        """Run the action now, once, as fire ``<action_id>@manual-<epoch_ms>`` (the worker
        applies the action's overlap rules to it as to any fire)."""
        target = await self._target(action)
        now = self.clock.now()
        # Whole milliseconds, as headers carry instants: the id and the scheduled instant the
        # worker reads back then name the same millisecond.
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        identity = manual_fire_id(target_id(target), now)
        if isinstance(target, ScheduleRecord):  # its body is the stored message: keep it
            envelope = replace(target_plan(target).envelope(now, now, False), message_id=identity)
        else:
            envelope = fire_envelope(target, now, now=now, fire_id=identity)
        await self.backend.enqueue_fires(
            [FireClaim(identity, target_id(target), now, envelope)], due=now
        )
        # Nothing queued means a fire of this very id (same action, same millisecond) is
        # already queued or ran: it is the same manual fire, so its id is the answer.
        return identity

    async def backfill(self, action: str, start: datetime, end: datetime) -> list[str]:
        """Queue every cron slot in ``[start, end)`` under its normal fire id, so a slot that
        already ran, or is queued, is left out. Returns the fire ids queued."""
        target = await self._target(action)
        plan = target_plan(target)
        now = self.clock.now()
        slots = backfill_slots(plan.action_id, plan.cron, start, end, now=now)
        claims = [
            FireClaim(
                fire_id(plan.action_id, at),
                plan.action_id,
                at,
                # Marked catch-up: the worker runs the slots one after another instead of
                # skipping those that find the previous one still running.
                plan.envelope(at, now, True),
            )
            for at in slots
        ]
        queued: list[str] = []
        for i in range(0, len(claims), ENQUEUE_BATCH):
            batch = claims[i : i + ENQUEUE_BATCH]
            queued.extend(await self.backend.enqueue_fires(batch, due=now))
        return queued

    async def create_schedule(
        self,
        id: str,
        cron: str,
        message: Message,
        *,
        tz: str | None = None,
        catch_up: str = "latest",
        jitter: float = 0,
    ) -> ScheduleInfo:
        """Publish ``message`` to its topic on ``cron`` (read in ``tz``), from every beat, with
        the fire identity, catch-up, pause, exactly-once and history of decorated actions.
        Stored in the backend: it survives restarts. An existing schedule of that id is
        replaced. Raises ``CronError`` (bad cron or zone) or ``ConfigError`` before storing."""
        schedule = new_schedule(
            id,
            cron,
            message,
            tz=tz,
            catch_up=catch_up,
            jitter=jitter,
            now=self.clock.now(),
            action_ids={a.action_id for a in self.registry.actions},
        )
        await self.backend.put_schedule(schedule)
        return await self._schedule(schedule, 5, await self.backend.paused(), with_runs=False)

    async def delete_schedule(self, id: str) -> bool:
        """Whether there was a dynamic schedule of that id (beats stop it at their next look)."""
        return await self.backend.delete_schedule(id)

    # -- runs -----------------------------------------------------------------------------

    async def runs(
        self, action: str | None = None, outcome: str | None = None, limit: int = 50
    ) -> list[RunInfo]:
        """The most recent runs (of one action, with one outcome), newest scheduled first."""
        check_limit(limit)
        if outcome is not None and outcome not in OUTCOMES:
            raise ConfigError(f"unknown outcome {outcome!r}: use one of {', '.join(OUTCOMES)}")
        if action is not None:
            idents = [target_id(await self._target(action))]
        else:
            dynamic = await self.backend.dynamic_schedules()
            idents = [a.action_id for a in self._actions()] + [d.schedule_id for d in dynamic]
        # A filter can drop most of the newest records: read all that is kept then.
        depth = limit if outcome is None else max(limit, settings.run_history())
        found: list[RunInfo] = []
        for ident in idents:
            records = await self.backend.run_history(ident, limit=depth)
            found.extend(
                RunInfo.from_record(r) for r in records if outcome is None or r.outcome == outcome
            )
        found.sort(key=lambda r: r.scheduled_at, reverse=True)
        return found[:limit]

    # -- delayed messages -----------------------------------------------------------------

    async def delayed(self, topic: str | None = None, limit: int = 100) -> list[DelayedInfo]:
        """Pending delayed messages (of one topic), soonest first; the worker's internal
        re-checks are left out."""
        check_limit(limit)
        asked = limit
        while True:
            entries = await self.backend.list_delayed(limit=asked)
            found = [
                info
                for info in (delayed_info(e) for e in entries if not is_internal_task(e.task_id))
                if topic is None or info.topic == topic
            ]
            # Fewer entries than asked: the queue has no more. Else read deeper until
            # ``limit`` entries pass the filters.
            if len(found) >= limit or len(entries) < asked:
                return found[:limit]
            asked *= 4

    async def cancel_delayed(
        self, idempotency_key: str | None = None, message_id: str | None = None
    ) -> bool:
        """Remove a pending delayed message by the idempotency key it was published with, or
        by its message id (exactly one); whether one was removed."""
        if (idempotency_key is None) == (message_id is None):
            raise ConfigError("cancel_delayed takes exactly one of idempotency_key or message_id")
        if idempotency_key is not None:
            return await self.backend.cancel_delayed(task_id=f"key:{idempotency_key}")
        return await self.backend.cancel_delayed(message_id=message_id)

    # -- dead letters ---------------------------------------------------------------------

    async def dead_letters(self, limit: int = 100) -> list[DeadLetterInfo]:
        check_limit(limit)
        broker = await self._connected_broker("listing dead letters")
        return [dead_letter_info(d) for d in await broker.dead_letters(limit=limit)]

    async def replay_dead_letters(self, ids: Sequence[str] | None = None) -> int:
        """Publish dead letters (those with these message ids, or all) back to their topic or
        action; how many were replayed."""
        broker = await self._connected_broker("replaying dead letters")
        return await broker.replay_dead_letters(list(ids) if ids is not None else None)

    async def purge_dead_letters(self) -> int:
        """Drop every dead letter; how many were dropped."""
        broker = await self._connected_broker("purging dead letters")
        return await broker.purge_dead_letters()

    # -- processes ------------------------------------------------------------------------

    async def processes(self) -> list[ProcessInfo]:
        """Beats and workers by their heartbeats; ``alive`` if seen within 3 of their own
        heartbeat periods (their lease period)."""
        now = self.clock.now()
        records = await self.backend.processes()
        records.sort(key=lambda r: (r.kind, r.host, r.pid, r.process_id))
        return [
            ProcessInfo.from_record(
                r,
                alive=now - r.last_seen <= timedelta(seconds=GONE_AFTER_PERIODS * r.period_seconds),
            )
            for r in records
        ]
