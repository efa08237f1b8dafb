"""In-process backend (``memory://[name]``): one store per name per process.

It exists for the embedded mode and users' tests, and passes the same contract tests as the
Redis backend. Everything happens on the event loop thread, so each method is atomic as long as
it does not await in the middle.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from jararaca.backends.base import (
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
from jararaca.backends.memory_control import ControlState, MemoryControl
from jararaca.backends.records import RunRecord
from jararaca.clock import epoch_ms, from_epoch_ms
from jararaca.policies import PayloadPolicy, TimePolicy
from jararaca.settings import run_history
from jararaca.wire import Envelope

FIRE_CLAIM_TTL_MS = 3_600_000


@dataclass(slots=True)
class _Pending:
    due_ms: int
    seq: int
    envelope: Envelope


@dataclass(slots=True)
class _Run:
    owner: str
    lease_ms: int
    attempt: int
    done_until_ms: int | None = None


@dataclass(slots=True)
class _Mark:
    """An overlap mark: the fire holding it, a cancel request, and the fires waiting for it
    (the Redis backend keeps the same in a HASH, see lua/begin_run.lua)."""

    fire: str | None = None
    owner: str = ""
    lease_ms: int = 0
    at_ms: int = 0  # the holder's order (scheduled instant)
    cancel: str | None = None  # the fire asking the holder to stop
    cancel_at_ms: int = 0
    cancel_until_ms: int = 0
    waiting: dict[str, tuple[int, int]] = field(default_factory=dict)  # fire -> (order, kept)

    def head(self, now_ms: int) -> tuple[int, str, int] | None:
        """The earliest live waiting fire: (order, fire id, kept until ms)."""
        for fire, (_, kept) in list(self.waiting.items()):
            if kept <= now_ms:
                del self.waiting[fire]
        return min(((at, fire, kept) for fire, (at, kept) in self.waiting.items()), default=None)

    def empty(self) -> bool:
        return self.fire is None and self.cancel is None and not self.waiting


@dataclass
class _Store:
    last_fires: dict[str, int] = field(default_factory=dict)
    fire_claims: dict[str, int] = field(default_factory=dict)  # fire id -> expiry ms
    inflight: dict[str, tuple[int, Claimed]] = field(default_factory=dict)
    inflight_heap: list[tuple[int, str]] = field(default_factory=list)
    pending: dict[str, _Pending] = field(default_factory=dict)
    pending_heap: list[tuple[int, int, str]] = field(default_factory=list)
    runs: dict[str, _Run] = field(default_factory=dict)
    # Heaps of (expiry ms, key): pruning pops what expired, O(log n) per key, instead of
    # rescanning the whole dict.
    claim_expiries: list[tuple[int, str]] = field(default_factory=list)
    run_expiries: list[tuple[int, str]] = field(default_factory=list)
    overlap: dict[str, _Mark] = field(default_factory=dict)
    listeners: set[asyncio.Event] = field(default_factory=set)
    seq: itertools.count[int] = field(default_factory=itertools.count)
    control: ControlState = field(default_factory=lambda: ControlState(run_history()))

    def empty(self) -> None:
        """Forget all state; keep the listeners (they belong to live beats, not to state)."""
        fresh = _Store(listeners=self.listeners)
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))


_STORES: dict[str, _Store] = {}


def _store_for(name: str) -> _Store:
    return _STORES.setdefault(name, _Store())


def reset_memory_stores() -> None:
    """Forget every memory store of this process (for test isolation)."""
    _STORES.clear()


class MemoryBackend(MemoryControl):
    def __init__(self, name: str = "", *, namespace: str = "jararaca") -> None:
        self.name = name
        self.namespace = namespace
        self._key = f"{name}\x00{namespace}"
        self._s = _store_for(self._key)

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def info(self) -> BackendInfo:
        return BackendInfo(kind="memory", in_process=True, persists=False, detail="in-process")

    def _control_state(self) -> ControlState:
        return self._s.control

    async def delete_namespace(self) -> None:
        # Emptied in place: every client of this name and namespace shares the store, and
        # the beats' wake-up listeners stay registered.
        self._s.empty()

    def add_wakeup_listener(self, event: asyncio.Event) -> None:
        self._s.listeners.add(event)

    def remove_wakeup_listener(self, event: asyncio.Event) -> None:
        self._s.listeners.discard(event)

    # -- schedule state -------------------------------------------------------------------

    async def get_last_fires(self, action_ids: Sequence[str]) -> dict[str, datetime]:
        last = self._s.last_fires
        return {a: from_epoch_ms(last[a]) for a in action_ids if a in last}

    async def claim_fires(
        self, claims: Sequence[FireClaim], *, now: datetime, lease_until: datetime
    ) -> list[ClaimResult]:
        s = self._s
        now_ms, lease_ms = epoch_ms(now), epoch_ms(lease_until)
        _prune(s.claim_expiries, now_ms, lambda key, at: _forget_claim(s.fire_claims, key, at))
        answers: list[ClaimResult] = []
        for claim in claims:
            expiry = s.fire_claims.get(claim.fire_id)
            if expiry is not None and expiry > now_ms:
                answers.append(ClaimResult.TAKEN)
                continue
            s.fire_claims[claim.fire_id] = now_ms + FIRE_CLAIM_TTL_MS
            _remember(s.claim_expiries, now_ms + FIRE_CLAIM_TTL_MS, claim.fire_id)
            at = epoch_ms(claim.scheduled_at)
            if s.last_fires.get(claim.action_id, at - 1) < at:
                s.last_fires[claim.action_id] = at
            if claim.action_id in s.control.paused:
                skipped = RunRecord(
                    claim.fire_id, claim.action_id, claim.scheduled_at, "skipped_paused"
                )
                s.control.record([skipped.ended("skipped_paused", finished_at=now)])
                answers.append(ClaimResult.PAUSED)
                continue
            self._put_inflight(Claimed(claim.fire_id, claim.envelope), lease_ms)
            answers.append(ClaimResult.CLAIMED)
        return answers

    # -- in flight ------------------------------------------------------------------------

    def _put_inflight(self, claimed: Claimed, lease_ms: int) -> None:
        key = claimed.inflight_id
        self._s.inflight[key] = (lease_ms, claimed)
        heapq.heappush(self._s.inflight_heap, (lease_ms, key))

    async def ack_inflight(self, inflight_ids: Sequence[str]) -> None:
        for key in inflight_ids:
            self._s.inflight.pop(key, None)

    def _inflight_head(self) -> tuple[int, str] | None:
        s = self._s
        while s.inflight_heap:
            lease_ms, message_id = s.inflight_heap[0]
            entry = s.inflight.get(message_id)
            if entry is not None and entry[0] == lease_ms:
                return lease_ms, message_id
            heapq.heappop(s.inflight_heap)  # stale: acked or re-leased
        return None

    async def reclaim_inflight(
        self, *, now: datetime, lease_until: datetime, limit: int
    ) -> list[Claimed]:
        now_ms, lease_ms = epoch_ms(now), epoch_ms(lease_until)
        taken: list[Claimed] = []
        while len(taken) < limit:
            head = self._inflight_head()
            if head is None or head[0] >= now_ms:
                break
            heapq.heappop(self._s.inflight_heap)
            claimed = self._s.inflight[head[1]][1]
            self._put_inflight(claimed, lease_ms)
            taken.append(claimed)
        return taken

    # -- delayed queue --------------------------------------------------------------------

    def _head_due_ms(self) -> int | None:
        s = self._s
        while s.pending_heap:
            due_ms, seq, task_id = s.pending_heap[0]
            entry = s.pending.get(task_id)
            if entry is not None and entry.seq == seq:
                return due_ms
            heapq.heappop(s.pending_heap)
        return None

    def _wake_if_sooner(self, before: int | None, due_ms: int) -> None:
        if before is None or due_ms < before:
            for event in self._s.listeners:
                event.set()

    async def enqueue_delayed(
        self,
        envelope: Envelope,
        due: datetime,
        *,
        task_id: str,
        payload_policy: PayloadPolicy = "ignore",
        time_policy: TimePolicy = "replace",
    ) -> None:
        s = self._s
        head = self._head_due_ms()
        due_ms = epoch_ms(due)
        current = s.pending.get(task_id)
        if current is not None:
            if payload_policy == "ignore":
                envelope = current.envelope
            if (time_policy == "greater" and due_ms <= current.due_ms) or (
                time_policy == "lesser" and due_ms >= current.due_ms
            ):
                due_ms = current.due_ms
            if due_ms == current.due_ms:
                current.envelope = envelope
                return
        seq = next(s.seq)
        s.pending[task_id] = _Pending(due_ms, seq, envelope)
        heapq.heappush(s.pending_heap, (due_ms, seq, task_id))
        self._wake_if_sooner(head, due_ms)

    async def enqueue_delayed_many(self, entries: Sequence[tuple[Envelope, datetime]]) -> None:
        s = self._s
        head = self._head_due_ms()
        soonest: int | None = None
        for envelope, due in entries:
            due_ms = epoch_ms(due)
            seq = next(s.seq)
            s.pending[envelope.message_id] = _Pending(due_ms, seq, envelope)
            heapq.heappush(s.pending_heap, (due_ms, seq, envelope.message_id))
            soonest = due_ms if soonest is None else min(soonest, due_ms)
        if soonest is not None:
            self._wake_if_sooner(head, soonest)

    async def claim_due(self, *, now: datetime, lease_until: datetime, limit: int) -> list[Claimed]:
        s = self._s
        now_ms, lease_ms = epoch_ms(now), epoch_ms(lease_until)
        taken: list[Claimed] = []
        while len(taken) < limit:
            due_ms = self._head_due_ms()
            if due_ms is None or due_ms > now_ms:
                break
            _, _, task_id = heapq.heappop(s.pending_heap)
            envelope = s.pending.pop(task_id).envelope
            # Keyed like the Redis backend: retries of one message share its id (see base).
            claimed = Claimed(f"{task_id}/{envelope.message_id}", envelope, from_epoch_ms(due_ms))
            self._put_inflight(claimed, lease_ms)
            taken.append(claimed)
        return taken

    async def next_due(self) -> datetime | None:
        candidates = [ms for ms in (self._head_due_ms(),) if ms is not None]
        head = self._inflight_head()
        if head is not None:
            candidates.append(head[0])
        return from_epoch_ms(min(candidates)) if candidates else None

    async def pending_count(self) -> int:
        return len(self._s.pending)

    async def list_delayed(self, *, limit: int) -> list[DelayedEntry]:
        entries = sorted(self._s.pending.items(), key=lambda item: (item[1].due_ms, item[1].seq))
        return [
            DelayedEntry(task_id, pending.envelope, from_epoch_ms(pending.due_ms))
            for task_id, pending in entries[:limit]
        ]

    async def cancel_delayed(
        self, *, task_id: str | None = None, message_id: str | None = None
    ) -> bool:
        pending = self._s.pending
        if task_id is None and message_id is not None:
            task_id = next(
                (t for t, p in pending.items() if p.envelope.message_id == message_id), None
            )
        # The heap keeps a stale entry; _head_due_ms skips it (its task is gone).
        return task_id is not None and pending.pop(task_id, None) is not None

    async def enqueue_fires(self, claims: Sequence[FireClaim], *, due: datetime) -> list[str]:
        s = self._s
        now_ms = epoch_ms(due)
        queued: list[str] = []
        for claim in claims:
            fire = claim.fire_id
            run = s.runs.get(fire)
            known = (
                s.fire_claims.get(fire, 0) > now_ms
                or (run is not None and (run.done_until_ms or run.lease_ms) > now_ms)
                or s.control.knows_fire(claim.action_id, fire)
                or fire in s.pending
                or f"recheck:{fire}" in s.pending  # waiting for the previous run to end
            )
            if not known:
                await self.enqueue_delayed(claim.envelope, due, task_id=fire)
                queued.append(fire)
        return queued

    # -- runs -----------------------------------------------------------------------------

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
    ) -> RunStart:
        s = self._s
        now_ms, lease_ms = epoch_ms(now), epoch_ms(lease_until)
        keep_ms = round(remember_for.total_seconds() * 1000)
        run = s.runs.get(fire_id)
        if run is not None and run.done_until_ms is not None:
            if run.done_until_ms > now_ms:
                return RunStart(RunStatus.DONE, attempt=run.attempt)
            run = None
        if run is not None and run.lease_ms > now_ms:  # live, whoever holds it
            return RunStart(RunStatus.BUSY, run.attempt, from_epoch_ms(run.lease_ms))
        if overlap_key is not None:
            mark = s.overlap.setdefault(overlap_key, _Mark())
            order = epoch_ms(record.scheduled_at if record is not None else now)
            blocked = _overlap(mark, fire_id, order, on_overlap, now_ms, lease_ms)
            if blocked is not None:
                status, until_ms = blocked
                if status is RunStatus.OVERLAP:
                    s.runs[fire_id] = _Run(owner, now_ms, 1, done_until_ms=now_ms + keep_ms)
                    _remember(s.run_expiries, now_ms + keep_ms, fire_id)
                    if record is not None:
                        s.control.record([record.ended("skipped_overlap", finished_at=now)])
                if mark.empty():
                    del s.overlap[overlap_key]
                busy_until = None if until_ms is None else from_epoch_ms(until_ms)
                return RunStart(status, 1, busy_until)
            if mark.fire != fire_id:  # a new holder: a request to stop was for the previous one
                mark.cancel, mark.cancel_at_ms, mark.cancel_until_ms = None, 0, 0
            mark.fire, mark.owner, mark.lease_ms, mark.at_ms = fire_id, owner, lease_ms, order
            mark.waiting.pop(fire_id, None)
        attempt = 1 if run is None else run.attempt + 1
        s.runs[fire_id] = _Run(owner, lease_ms, attempt)
        if record is not None:
            s.control.record([replace(record, attempt=attempt)])
        return RunStart(RunStatus.STARTED, attempt)

    async def renew_run(
        self, fire_id: str, *, overlap_key: str | None, owner: str, lease_until: datetime
    ) -> bool:
        s = self._s
        run = s.runs.get(fire_id)
        if run is None or run.owner != owner or run.done_until_ms is not None:
            return False
        run.lease_ms = epoch_ms(lease_until)
        if overlap_key is not None:
            mark = s.overlap.get(overlap_key)
            if mark is not None and mark.fire == fire_id and mark.owner == owner:
                mark.lease_ms = run.lease_ms
        return True

    async def cancel_requested(self, fire_id: str, *, overlap_key: str) -> bool:
        mark = self._s.overlap.get(overlap_key)
        return mark is not None and mark.fire == fire_id and mark.cancel is not None

    async def release_run(
        self,
        fire_id: str,
        *,
        overlap_key: str | None,
        owner: str,
        now: datetime,
        record: RunRecord | None = None,
    ) -> None:
        held = await self.renew_run(fire_id, overlap_key=overlap_key, owner=owner, lease_until=now)
        if held and record is not None:
            self._s.control.record([record])

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
        s = self._s
        keep_ms = round(remember_for.total_seconds() * 1000)
        now_ms = epoch_ms(now)
        run = s.runs.get(fire_id)
        taken_over = (
            run is not None
            and run.owner != owner
            and run.done_until_ms is None
            and run.lease_ms > now_ms
        )
        if not taken_over:  # never mark another owner's live run done
            attempt = run.attempt if run is not None else 1
            s.runs[fire_id] = _Run(owner, now_ms, attempt, done_until_ms=now_ms + keep_ms)
            _remember(s.run_expiries, now_ms + keep_ms, fire_id)
            if record is not None:
                s.control.record([record])
        if overlap_key is not None:
            mark = s.overlap.get(overlap_key)
            if mark is not None and mark.fire == fire_id and mark.owner == owner:
                # Waiting fires (and a cancel request, whose fire waits) stay.
                mark.fire, mark.owner, mark.lease_ms, mark.at_ms = None, "", 0, 0
                if mark.empty():
                    del s.overlap[overlap_key]
        _prune(s.run_expiries, now_ms, lambda key, at: _forget_run(s.runs, key, at))

    async def is_running(self, overlap_key: str, *, now: datetime) -> bool:
        mark = self._s.overlap.get(overlap_key)
        return mark is not None and mark.fire is not None and mark.lease_ms > epoch_ms(now)


def _overlap(
    mark: _Mark, fire: str, order: int, on_overlap: OnOverlap, now_ms: int, lease_ms: int
) -> tuple[RunStatus, int | None] | None:
    """What ``on_overlap`` makes of the fire ``fire`` given its action's overlap mark: None
    when it may start, else OVERLAP (skip it) or WAITING, with the instant that blocks it. It
    updates the mark's waiting fires and cancel request, as lua/begin_run.lua does."""
    if mark.fire == fire:  # taken over after its worker died: it resumes at once
        return None
    holding = mark.fire is not None and mark.lease_ms > now_ms
    head = mark.head(now_ms)
    registered = fire in mark.waiting
    my_turn = head is None or head[1] == fire or (order, fire) < head[:2]
    blocked_until = mark.lease_ms if holding else None if head is None else head[2]

    def wait() -> tuple[RunStatus, int | None]:
        mark.waiting[fire] = (order, lease_ms)
        return RunStatus.WAITING, blocked_until

    if on_overlap == "skip":
        return (RunStatus.OVERLAP, mark.lease_ms) if holding else None
    if on_overlap == "wait":
        return wait() if holding or not my_turn else None
    if on_overlap == "wait_one":
        if not registered and head is not None:
            return RunStatus.OVERLAP, blocked_until  # another fire already waits
        return wait() if holding or not my_turn else None
    # cancel_other: the latest fire wins; an earlier one, running or waiting, gives way.
    asking = mark.cancel is not None and mark.cancel_until_ms > now_ms
    if (holding and (order, fire) < (mark.at_ms, mark.fire or "")) or (
        asking and (order, fire) < (mark.cancel_at_ms, mark.cancel or "")
    ):
        return RunStatus.OVERLAP, blocked_until
    if holding:
        mark.cancel, mark.cancel_at_ms, mark.cancel_until_ms = fire, order, lease_ms
        return RunStatus.WAITING, mark.lease_ms
    return None


def _remember(expiries: list[tuple[int, str]], at: int, key: str) -> None:
    heapq.heappush(expiries, (at, key))


def _prune(
    expiries: list[tuple[int, str]], now_ms: int, forget: Callable[[str, int], object]
) -> None:
    while expiries and expiries[0][0] <= now_ms:
        at, key = heapq.heappop(expiries)
        forget(key, at)


def _forget_run(runs: dict[str, _Run], key: str, at: int) -> None:
    run = runs.get(key)
    if run is not None and run.done_until_ms == at:
        del runs[key]


def _forget_claim(claims: dict[str, int], key: str, at: int) -> None:
    if claims.get(key) == at:
        del claims[key]
