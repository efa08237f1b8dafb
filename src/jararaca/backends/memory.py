"""In-process backend (``memory://[name]``): one store per name per process.

It exists for the embedded mode and users' tests, and passes the same contract tests as the
Redis backend. Everything happens on the event loop thread, so each method is atomic as long as
it does not await in the middle. The state lives in :mod:`memory_store`; the run leases and the
control side are mixed in from :mod:`memory_runs` and :mod:`memory_control`.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Sequence
from datetime import datetime

from jararaca.backends.base import (
    BackendInfo,
    Claimed,
    ClaimResult,
    DelayedEntry,
    FireClaim,
)
from jararaca.backends.memory_control import ControlState, MemoryControl
from jararaca.backends.memory_runs import MemoryRunLeases
from jararaca.backends.memory_store import (
    FIRE_CLAIM_TTL_MS,
    Pending,
    forget_claim,
    prune,
    remember,
    reset_memory_stores,
    store_for,
)
from jararaca.backends.records import RunRecord
from jararaca.clock import epoch_ms, from_epoch_ms
from jararaca.policies import PayloadPolicy, TimePolicy
from jararaca.wire import Envelope

__all__ = ["MemoryBackend", "reset_memory_stores"]


class MemoryBackend(MemoryRunLeases, MemoryControl):
    def __init__(self, name: str = "", *, namespace: str = "jararaca") -> None:
        self.name = name
        self.namespace = namespace
        self._key = f"{name}\x00{namespace}"
        self._s = store_for(self._key)

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
        prune(s.claim_expiries, now_ms, lambda key, at: forget_claim(s.fire_claims, key, at))
        answers: list[ClaimResult] = []
        for claim in claims:
            expiry = s.fire_claims.get(claim.fire_id)
            if expiry is not None and expiry > now_ms:
                answers.append(ClaimResult.TAKEN)
                continue
            s.fire_claims[claim.fire_id] = now_ms + FIRE_CLAIM_TTL_MS
            remember(s.claim_expiries, now_ms + FIRE_CLAIM_TTL_MS, claim.fire_id)
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
        if not s.inflight:
            # Every entry is stale: dropping them at once spares a heap pop each (a burst
            # leaves one per message it published).
            s.inflight_heap.clear()
            return None
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

    def _live_head(self) -> tuple[int, str] | None:
        """``(due_ms, task_id)`` of the first entry still pending."""
        s = self._s
        while (head := s.due.head()) is not None:
            due_ms, seq, task_id = head
            entry = s.pending.get(task_id)
            if entry is not None and entry.seq == seq:
                return due_ms, task_id
            s.due.drop_head()  # stale: replaced or cancelled since
        return None

    def _head_due_ms(self) -> int | None:
        head = self._live_head()
        return None if head is None else head[0]

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
        s.pending[task_id] = Pending(due_ms, seq, envelope)
        s.due.push(due_ms, seq, task_id)
        self._wake_if_sooner(head, due_ms)

    async def enqueue_delayed_many(self, entries: Sequence[tuple[Envelope, datetime]]) -> None:
        s = self._s
        head = self._head_due_ms()
        soonest: int | None = None
        for envelope, due in entries:
            due_ms = epoch_ms(due)
            seq = next(s.seq)
            s.pending[envelope.message_id] = Pending(due_ms, seq, envelope)
            s.due.push(due_ms, seq, envelope.message_id)
            soonest = due_ms if soonest is None else min(soonest, due_ms)
        if soonest is not None:
            self._wake_if_sooner(head, soonest)

    async def claim_due(self, *, now: datetime, lease_until: datetime, limit: int) -> list[Claimed]:
        s = self._s
        now_ms, lease_ms = epoch_ms(now), epoch_ms(lease_until)
        taken: list[Claimed] = []
        due_at_ms, due_at = -1, None  # a burst's entries share their instant: built once
        while len(taken) < limit:
            head = self._live_head()
            if head is None or head[0] > now_ms:
                break
            due_ms, task_id = head
            s.due.drop_head()
            envelope = s.pending.pop(task_id).envelope
            if due_ms != due_at_ms:
                due_at_ms, due_at = due_ms, from_epoch_ms(due_ms)
            # Keyed like the Redis backend: retries of one message share its id (see base).
            claimed = Claimed(f"{task_id}/{envelope.message_id}", envelope, due_at)
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

    async def is_running(self, overlap_key: str, *, now: datetime) -> bool:
        mark = self._s.overlap.get(overlap_key)
        return mark is not None and mark.fire is not None and mark.lease_ms > epoch_ms(now)
