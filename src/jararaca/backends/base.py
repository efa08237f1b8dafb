"""The state backend protocols, one per role, implemented by the memory and Redis backends.

Every method is one atomic state change. Time is always passed in (``now``, ``lease_until``)
so implementations never read the clock and tests control time. The roles:

* :class:`FireStore`, **schedule state**: the last dispatched instant of each action and the
  fire claims that make each (action, instant) dispatch once across any number of beats;
* :class:`InFlight`: envelopes a beat has claimed (cron fires and due delayed messages) but
  whose publish the broker has not confirmed yet. Each has a lease; an entry whose lease
  expired (its beat died) is reclaimed by another beat and published again. Entries are keyed
  by :attr:`Claimed.inflight_id` and removed only by ``ack_inflight`` after the broker
  confirmed;
* :class:`DelayedQueue`: pending envelopes keyed by task id (the idempotency key, or the
  message id), ordered by due instant, with the seed's payload and time policies;
* :class:`RunLeases`: a record per fire (or handled message) started by a worker, its lease
  renewed while it runs, and a running mark per action for ``allow_overlap=False``;
* :class:`Admin` and the control protocols (:class:`RunHistory`, :class:`Pauses`,
  :class:`Processes`, :class:`DelayedAdmin`): what operators and tests ask and steer, kept out
  of the hot-path protocols (the run history is *written* through the run leases, in the same
  round trips).

Storage never shapes the wire: backends store and return envelopes and instants, and the beat
stamps the headers (``x-jararaca-due-at``, ``x-jararaca-dispatched-at``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from jararaca.backends.records import ProcessRecord, RunRecord, ScheduleRecord
from jararaca.backends.values import (
    REMEMBER_DONE,
    BackendInfo,
    Claimed,
    ClaimResult,
    DelayedEntry,
    FireClaim,
    OnOverlap,
    RunStart,
    RunStatus,
)
from jararaca.policies import PayloadPolicy, TimePolicy
from jararaca.wire import Envelope


class Connection(Protocol):
    """Opening and closing the backend, and what it is."""

    namespace: str

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def info(self) -> BackendInfo: ...


class FireStore(Protocol):
    """Schedule state: which fires were dispatched, each exactly once across beats."""

    async def get_last_fires(self, action_ids: Sequence[str]) -> dict[str, datetime]:
        """The last dispatched instant of each action that has one."""
        ...

    async def claim_fires(
        self, claims: Sequence[FireClaim], *, now: datetime, lease_until: datetime
    ) -> list[ClaimResult]:
        """For each claim, atomically: if this fire was claimed before, answer TAKEN.
        Otherwise remember it (for at least an hour) and raise the action's last fire to
        ``scheduled_at`` (never lower it, so catch-up never replays it); then, if the action is
        paused, add a ``skipped_paused`` record to its run history and answer PAUSED, else put
        the envelope in flight (keyed by the fire id) until ``lease_until`` and answer
        CLAIMED."""
        ...


class InFlight(Protocol):
    """Claimed envelopes not yet confirmed by the broker, each under a lease."""

    async def ack_inflight(self, inflight_ids: Sequence[str]) -> None:
        """Forget in-flight entries (by :attr:`Claimed.inflight_id`) the broker confirmed."""
        ...

    async def reclaim_inflight(
        self, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[Claimed]:
        """Take up to ``limit`` in-flight entries whose lease ended before ``now``, extend their
        lease to ``lease_until`` and return them to be published again."""
        ...


class DelayedQueue(Protocol):
    """Messages waiting for their due instant."""

    async def enqueue_delayed(
        self,
        envelope: Envelope,
        due: datetime,
        *,
        task_id: str,
        payload_policy: PayloadPolicy = "ignore",
        time_policy: TimePolicy = "replace",
    ) -> None:
        """Add or update the pending entry ``task_id``. With no pending entry of that id, add
        it. Otherwise ``payload_policy`` ``ignore`` keeps the pending envelope and ``replace``
        stores the new one; ``time_policy`` ``replace`` sets ``due``, ``greater`` sets it only
        if later than the pending due, ``lesser`` only if earlier. Wakes listeners when the
        queue's head became sooner. The policies are valid (checked by the publisher)."""
        ...

    async def enqueue_delayed_many(self, entries: Sequence[tuple[Envelope, datetime]]) -> None:
        """Add many entries without idempotency keys (task id = message id), in one round trip."""
        ...

    async def claim_due(self, *, now: datetime, lease_until: datetime, limit: int) -> list[Claimed]:
        """Move up to ``limit`` pending entries due at or before ``now`` (earliest first; entries
        due at the same instant in no particular order) into flight until ``lease_until`` and
        return them with the due instant each had. In flight they are keyed by task id and
        message id: retries of one message for several handlers (one task each) share the
        message id, and a key reused while its previous message is in flight shares the task
        id."""
        ...

    async def next_due(self) -> datetime | None:
        """The earliest instant at which :meth:`claim_due` or ``reclaim_inflight`` will have
        something: the earliest pending due or in-flight lease end; None when empty."""
        ...

    def add_wakeup_listener(self, event: asyncio.Event) -> None:
        """Set ``event`` whenever an enqueue makes the queue's head sooner (in any process)."""
        ...

    def remove_wakeup_listener(self, event: asyncio.Event) -> None: ...


class RunLeases(Protocol):
    """Run records: each fire or message run once, leased while it runs.

    An action's overlap mark (``overlap_key``) holds the fire running now (its owner, lease
    and order), the fire that asked it to stop (``cancel_other``), and the fires waiting to
    start after it, each with its order and how long it is kept without asking again. A
    fire's order is its record's scheduled instant (``now`` without a record)."""

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
        """Atomically decide whether ``owner`` may start the fire ``fire_id``:

        * fire finished (or skipped, remembered for ``remember_for``) before -> DONE;
        * fire held by a live lease (``> now``), whoever holds it (a second delivery to the
          same worker must not run it twice) -> BUSY with that lease end;
        * ``overlap_key`` given, and a live lease of *another* fire on it or fires waiting for
          it, by ``on_overlap`` ("skipped" is OVERLAP: the fire is recorded done, so a
          redelivery is DONE; "waits" is WAITING: nothing is recorded, ask again shortly; the
          fire is kept among the waiting ones until ``lease_until``):

          - ``skip``: held by another fire -> skipped (waiting fires do not count);
          - ``wait`` (buffer_all, catch-up): held by another fire, or an earlier fire (by
            order) waits -> waits. Waiting fires thus start one at a time, in order;
          - ``wait_one`` (buffer_one): another fire waits and this one is not waiting yet ->
            skipped; held by another fire or an earlier fire waits -> waits;
          - ``cancel_other`` (the latest fire wins): a *later* fire holds the key or asked
            its holder to stop -> skipped; held by another fire -> the holder is asked to stop
            (see :meth:`cancel_requested`) and this fire waits;

          a fire that still holds the mark (taken over after its worker died) is not blocked;
        * otherwise the fire (and ``overlap_key`` when given: it leaves the waiting fires, and
          a request to stop addressed to the previous holder is dropped) is leased to
          ``owner`` until ``lease_until`` -> STARTED, with ``attempt`` 1 the first time and one
          more each time an expired lease is taken over.

        With ``record`` (a ``running`` record of a fire), the run history gets it on STARTED
        (with the attempt), or as ``skipped_overlap`` (finished now) when the fire is skipped;
        a waiting fire records nothing. ``busy_until`` is the holder's lease end (OVERLAP,
        WAITING, EARLY), else how long the earliest waiting fire is kept (or None).

        With ``ahead`` (asked before the fire's instant, so that the answer is in by then): a
        fire its overlap mark would skip or make wait (or whose ``cancel_other`` would ask the
        holder to stop) changes nothing and is EARLY, to be asked again at the instant; the
        overlap policy thus decides on the state at the instant, not before it. DONE, BUSY
        and STARTED answer as without it."""
        ...

    async def renew_run(
        self, fire_id: str, *, overlap_key: str | None, owner: str, lease_until: datetime
    ) -> bool:
        """Extend the run's (and overlap key's) lease if ``owner`` still holds it."""
        ...

    async def cancel_requested(self, fire_id: str, *, overlap_key: str) -> bool:
        """Whether a ``cancel_other`` fire asked the run ``fire_id``, holder of
        ``overlap_key``, to stop (the worker asks at each lease renewal)."""
        ...

    async def release_run(
        self,
        fire_id: str,
        *,
        overlap_key: str | None,
        owner: str,
        now: datetime,
        record: RunRecord | None = None,
    ) -> None:
        """End ``owner``'s lease on the run now, without recording it done: the run was
        cancelled (shutdown) and another worker may take it over at once, as attempt + 1.
        ``record`` (``cancelled``) goes into the run history."""
        ...

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
        """Record the fire as done (remembered for ``remember_for``) and release the overlap
        key if ``owner`` holds it (the fires waiting for it keep their places). When another
        owner took the run over and holds a live lease on it, its record is left alone.
        ``record`` (the run's end) goes into the run history unless the run was taken over."""
        ...


class Admin(Protocol):
    """What only operators and tests ask; never on a hot path."""

    async def pending_count(self) -> int:
        """How many entries wait in the delayed queue (not counting in-flight ones)."""
        ...

    async def is_running(self, overlap_key: str, *, now: datetime) -> bool:
        """Whether a live lease holds ``overlap_key``."""
        ...

    async def delete_namespace(self) -> None:
        """Forget everything this namespace holds (tests and decommissioning)."""
        ...


class RunHistory(Protocol):
    """The last runs of each action (``JARARACA_RUN_HISTORY`` per action, oldest dropped)."""

    async def record_runs(self, records: Sequence[RunRecord]) -> None:
        """Add or replace (by fire id) records in their actions' histories. The runtime writes
        records through the run leases and fire claims; this is for tools and tests (e.g.
        importing a history)."""
        ...

    async def run_history(self, action_id: str, *, limit: int) -> list[RunRecord]:
        """The action's most recent runs, latest scheduled instant first."""
        ...


class Pauses(Protocol):
    """Paused actions, honoured by every beat from the next slot (see ``claim_fires``)."""

    async def pause(self, action_id: str, reason: str) -> None: ...

    async def resume(self, action_id: str) -> bool:
        """Whether the action was paused."""
        ...

    async def paused(self) -> dict[str, str]:
        """Paused action ids and the reason given ("" when none)."""
        ...


class Processes(Protocol):
    """Heartbeats of beats and workers."""

    async def heartbeat(self, record: ProcessRecord, *, keep: timedelta) -> None:
        """Store the process's record; records not renewed for ``keep`` are forgotten."""
        ...

    async def processes(self) -> list[ProcessRecord]: ...

    async def forget_process(self, process_id: str) -> None:
        """Remove a process that stopped cleanly."""
        ...


class DelayedAdmin(Protocol):
    """Looking into and steering the delayed queue."""

    async def list_delayed(self, *, limit: int) -> list[DelayedEntry]:
        """Pending entries, soonest first."""
        ...

    async def cancel_delayed(
        self, *, task_id: str | None = None, message_id: str | None = None
    ) -> bool:
        """Remove the pending entry with this task id (or whose envelope has this message
        id); whether one was removed."""
        ...

    async def enqueue_fires(self, claims: Sequence[FireClaim], *, due: datetime) -> list[str]:
        """Queue fires to be dispatched at ``due`` (trigger, backfill), keyed by fire id; a fire
        already claimed, running, run, in the history or pending is left out. The fire ids
        queued. A queued fire a beat holds in flight right now is not seen (it may be queued
        again); the worker's run record still runs it once."""
        ...


class Schedules(Protocol):
    """Dynamic schedules, created and deleted at run time (they survive every restart)."""

    async def put_schedule(self, schedule: ScheduleRecord) -> None:
        """Add or replace a schedule, and bump the version beats watch."""
        ...

    async def delete_schedule(self, schedule_id: str) -> bool:
        """Whether there was one; bumps the version."""
        ...

    async def dynamic_schedules(self) -> list[ScheduleRecord]: ...

    async def schedules_version(self) -> int:
        """A number that changes whenever a schedule is put or deleted (0 before any)."""
        ...


class PublisherStore(DelayedQueue, DelayedAdmin, Protocol):
    """What a publisher uses: enqueue, and cancel by idempotency key."""


class BeatStore(FireStore, InFlight, DelayedQueue, Schedules, Protocol):
    """What a beat uses."""


class WorkerStore(RunLeases, DelayedQueue, Protocol):
    """What a worker uses (the delayed queue for retries and rechecks)."""


class ControlStore(Admin, RunHistory, Pauses, Processes, DelayedAdmin, Schedules, Protocol):
    """What the control plane uses."""


class Backend(Connection, FireStore, InFlight, DelayedQueue, RunLeases, ControlStore, Protocol):
    """Everything a backend implements (memory, Redis)."""


__all__ = [
    "REMEMBER_DONE",
    "Admin",
    "Backend",
    "BackendInfo",
    "BeatStore",
    "ClaimResult",
    "Claimed",
    "Connection",
    "ControlStore",
    "DelayedAdmin",
    "DelayedEntry",
    "DelayedQueue",
    "FireClaim",
    "FireStore",
    "InFlight",
    "OnOverlap",
    "Pauses",
    "Processes",
    "PublisherStore",
    "RunHistory",
    "RunLeases",
    "RunStart",
    "RunStatus",
    "Schedules",
    "WorkerStore",
]
