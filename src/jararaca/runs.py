"""Guarded runs: whether this worker may run a fire or message now, and recording it.

The backend's run record makes a run happen once: a duplicate delivery is acknowledged, a run
another worker holds (or a fire waiting for the previous run of its action: catch-up,
``buffer_one``, ``buffer_all``, ``cancel_other``) is looked at again later through the delayed
queue, and the lease is renewed while user code runs. A ``cancel_other`` action's user code
runs in a task of its own, so that a newer fire's request to stop cancels it and nothing else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from jararaca import wire
from jararaca.backends.base import REMEMBER_DONE, OnOverlap, RunStart, RunStatus, WorkerStore
from jararaca.backends.records import RunRecord
from jararaca.brokers.base import Delivery
from jararaca.clock import Clock
from jararaca.errors import JararacaError
from jararaca.invoke import LeaseRenewer, call_user_code
from jararaca.observability.telemetry import Telemetry
from jararaca.outage import Outage

log = logging.getLogger("jararaca.worker")
# How soon a fire waiting for the previous run of its action (catch-up, buffer_one,
# buffer_all, cancel_other) asks again.
CATCH_UP_RECHECK = timedelta(seconds=1)


@dataclass
class WorkerStats:
    runs_started: int = 0
    runs_failed: int = 0
    runs_cancelled: int = 0  # cancel_other: a newer fire asked the run to stop
    skipped_overlap: int = 0
    duplicates: int = 0
    rechecks: int = 0
    messages_handled: int = 0
    messages_failed: int = 0
    retried: int = 0
    dead_lettered: int = 0


class RunGuard:
    """One worker's side of the run records: begin, renew while running, finish."""

    def __init__(
        self,
        backend: WorkerStore,
        owner: str,
        clock: Clock,
        lease: timedelta,
        renewer: LeaseRenewer,
        stats: WorkerStats,
        outage: Outage,
        telemetry: Telemetry,
    ) -> None:
        self.backend = backend
        self.owner = owner
        self.clock = clock
        self.lease = lease
        self.renewer = renewer
        self.stats = stats
        self.outage = outage
        self.telemetry = telemetry
        self.in_user_code = 0  # runs now inside user code (the rest is the worker's own work)

    async def begin(
        self,
        delivery: Delivery,
        run_key: str,
        overlap_key: str | None,
        *,
        on_overlap: OnOverlap = "skip",
        recheck_routing_key: str | None = None,
        remember_for: timedelta = REMEMBER_DONE,
        record: RunRecord | None = None,
        action: str | None = None,
        not_before: datetime | None = None,
        now: datetime | None = None,
    ) -> RunStart | None:
        """Ask the backend whether this worker may run ``run_key`` now. Settles the delivery
        itself and returns None when it may not (a duplicate, a skip on overlap, a fire that
        waits for the previous run, or another worker holding it). ``action`` names a fire's
        action in the metrics; ``now``, the instant the caller just read, saves reading the
        clock again.

        Asked before ``not_before`` (a fire held until its instant), a fire the previous run
        of its action would hold back is asked about again at the instant: its overlap policy
        decides on what runs then, as if it had been asked only then."""
        ask_ahead = not_before
        given = now
        while True:
            now = given if given is not None else self.clock.now()
            given = None  # asked again at the instant: the clock is read then
            ahead = ask_ahead is not None and now < ask_ahead
            # A begin cancelled by shutdown while its answer was on the way is the backend's
            # to clean up (the Redis backend releases a run that started anyway).
            start = await self.backend.begin_run(
                run_key,
                overlap_key=overlap_key,
                owner=self.owner,
                now=now,
                lease_until=now + self.lease,
                on_overlap=on_overlap,
                remember_for=remember_for,
                record=record,
                ahead=ahead,
            )
            if start.status is not RunStatus.EARLY or ask_ahead is None:
                break
            await self.clock.sleep_until(ask_ahead)
            ask_ahead = None  # asked at the instant: the answer is final
        self.outage.recovered()
        if start.status is RunStatus.STARTED:
            return start
        if start.status is RunStatus.DONE:
            self.stats.duplicates += 1
            log.debug("%s already ran: duplicate delivery acknowledged", run_key)
            await delivery.ack()
        elif start.status is RunStatus.WAITING:
            # Wait for the previous run (missed slots, buffered fires), don't skip: look again
            # shortly, and start once it ended.
            log.debug("%s waits for the previous run of %s", run_key, overlap_key)
            await self.recheck_later(delivery, run_key, now + CATCH_UP_RECHECK, None)
        elif start.status is RunStatus.OVERLAP:
            self.stats.skipped_overlap += 1
            if action is not None:
                self.telemetry.fires(action, "skipped_overlap")
            log.warning("skipped %s: the previous run of %s is still running", run_key, overlap_key)
            await delivery.ack()
        else:
            holder_end = (start.busy_until or now + self.lease) + timedelta(seconds=1)
            await self.recheck_later(delivery, run_key, holder_end, recheck_routing_key)
        return None

    async def run_owned(
        self,
        run_key: str,
        overlap_key: str | None,
        call: Callable[[], Awaitable[Any]],
        timeout: float | None,
        record: RunRecord | None = None,
        *,
        cancellable: bool = False,
    ) -> BaseException | None:
        """Run user code while its lease is renewed; return what it raised.

        With ``cancellable`` (a ``cancel_other`` action's run), user code runs in a child
        task, and a newer fire's request to stop, seen at a lease renewal, cancels that task
        only: the run then returns the :class:`asyncio.CancelledError` as its error. (Other
        runs are never asked to stop, so they run in the delivery's task: no task per
        message.) A cancellation of the calling task itself (shutdown) is passed on, after
        releasing the lease."""
        child: asyncio.Task[BaseException | None] | None = None
        on_cancel = None
        if cancellable:
            child = asyncio.create_task(call_user_code(call, timeout=timeout))
            on_cancel = partial(_stop, child, run_key)
        self.renewer.add(run_key, overlap_key, on_cancel)
        self.in_user_code += 1
        try:
            if child is None:
                return await call_user_code(call, timeout=timeout)
            return await child
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if child is not None and (task is None or task.cancelling() == 0):
                # Only the user code was cancelled (asked to stop, or by itself): that is how
                # this run ended, and the worker goes on to record it.
                return exc
            # Shutdown ran out of grace (or a second signal came): release the lease now so
            # another worker takes the run over at once instead of after the lease.
            now = self.clock.now()
            cancelled = None if record is None else record.ended("cancelled", finished_at=now)
            await settle_quietly(
                lambda: self.backend.release_run(
                    run_key, overlap_key=overlap_key, owner=self.owner, now=now, record=cancelled
                )
            )
            raise
        finally:
            if child is not None and not child.done():
                child.cancel()
            self.in_user_code -= 1
            self.renewer.discard(run_key)

    async def finish(
        self,
        delivery: Delivery,
        run_key: str,
        overlap_key: str | None,
        remember_for: timedelta = REMEMBER_DONE,
        record: RunRecord | None = None,
        now: datetime | None = None,
    ) -> None:
        await self.record_done(run_key, overlap_key, remember_for, record, now)
        await delivery.ack()

    async def record_done(
        self,
        run_key: str,
        overlap_key: str | None,
        remember_for: timedelta = REMEMBER_DONE,
        record: RunRecord | None = None,
        now: datetime | None = None,
    ) -> None:
        """Record the run as done (``now``: the instant it ended, when the caller has it).
        The run already happened, so a backend failure here must not send the message round
        again: it is only logged (the record guards against duplicates, and its lease runs
        out by itself)."""
        try:
            await self.backend.finish_run(
                run_key,
                overlap_key=overlap_key,
                owner=self.owner,
                now=now if now is not None else self.clock.now(),
                remember_for=remember_for,
                record=record,
            )
        except JararacaError as exc:
            log.warning("could not record %s as done: %s", run_key, exc)

    async def recheck_later(
        self, delivery: Delivery, run_key: str, when: datetime, routing_key: str | None
    ) -> None:
        """Another worker holds this run's lease (a redelivery while that worker runs it, or
        that worker died), or a catch-up fire waits for the previous run. Look again at
        ``when`` through the delayed queue: by then it is done, or its lease expired and
        this run is taken over."""
        self.stats.rechecks += 1
        envelope = delivery.envelope
        if routing_key is not None:
            envelope = wire.Envelope(
                envelope.message_id, routing_key, envelope.body, envelope.headers
            )
        await self.backend.enqueue_delayed(envelope, when, task_id=f"recheck:{run_key}")
        await delivery.ack()


def _stop(child: asyncio.Task[Any], run_key: str) -> None:
    """A newer fire of a ``cancel_other`` action asked the run ``run_key`` to stop."""
    if not child.done():
        log.warning("%s: a newer fire of its action asked it to stop: cancelling it", run_key)
        child.cancel("a newer fire of the action asked this run to stop")


async def settle_quietly(settle: Callable[[], Any]) -> None:
    try:
        await settle()
    except Exception as exc:
        log.warning("could not settle a message (it will be redelivered): %s", exc)
