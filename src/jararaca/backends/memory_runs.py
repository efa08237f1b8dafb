"""The memory backend's run leases: begin, renew, release and finish runs, with the overlap
policies, atomically (everything happens on the event loop thread, between two awaits)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from jararaca.backends.base import REMEMBER_DONE, OnOverlap, RunStart, RunStatus
from jararaca.backends.memory_store import Run, Store, forget_run, prune, remember
from jararaca.backends.overlap import Mark, overlap_decision
from jararaca.backends.records import RunRecord
from jararaca.clock import duration_ms, epoch_ms, from_epoch_ms

# What nearly every begin answers (RunStart is frozen, so one instance serves them all).
_FIRST_START = RunStart(RunStatus.STARTED, 1)


class MemoryRunLeases:
    """RunLeases on the store of the backend it is mixed into."""

    _s: Store

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
        s = self._s
        now_ms, lease_ms = epoch_ms(now), epoch_ms(lease_until)
        run = s.runs.get(fire_id)
        if run is not None and run.done_until_ms is not None:
            if run.done_until_ms > now_ms:
                return RunStart(RunStatus.DONE, attempt=run.attempt)
            run = None
        if run is not None and run.lease_ms > now_ms:  # live, whoever holds it
            return RunStart(RunStatus.BUSY, run.attempt, from_epoch_ms(run.lease_ms))
        if overlap_key is not None:
            mark = s.overlap.setdefault(overlap_key, Mark())
            order = epoch_ms(record.scheduled_at if record is not None else now)
            blocked = overlap_decision(
                mark, fire_id, order, on_overlap, now_ms, lease_ms, ahead=ahead
            )
            if blocked is not None:
                status, until_ms = blocked
                if status is RunStatus.OVERLAP:
                    keep_ms = duration_ms(remember_for)
                    s.runs[fire_id] = Run(owner, now_ms, 1, done_until_ms=now_ms + keep_ms)
                    remember(s.run_expiries, now_ms + keep_ms, fire_id)
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
        s.runs[fire_id] = Run(owner, lease_ms, attempt)
        if record is not None:
            s.control.record([replace(record, attempt=attempt)])
        return _FIRST_START if attempt == 1 else RunStart(RunStatus.STARTED, attempt)

    async def renew_run(
        self, fire_id: str, *, overlap_key: str | None, owner: str, lease_until: datetime
    ) -> bool:
        s = self._s
        run = s.runs.get(fire_id)
        if run is None or run.owner != owner or run.done_until_ms is not None:
            return False
        mark = None if overlap_key is None else s.overlap.get(overlap_key)
        if overlap_key is not None and (mark is None or mark.fire != fire_id):
            # Another fire of the action took the mark (this run stalled past its lease): the
            # run no longer holds what let it start, so say so instead of renewing.
            return False
        run.lease_ms = epoch_ms(lease_until)
        if mark is not None and mark.owner == owner:
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
        now_ms = epoch_ms(now)
        run = s.runs.get(fire_id)
        taken_over = (
            run is not None
            and run.owner != owner
            and run.done_until_ms is None
            and run.lease_ms > now_ms
        )
        if not taken_over:  # never mark another owner's live run done
            done_until_ms = now_ms + duration_ms(remember_for)
            if run is None:
                s.runs[fire_id] = Run(owner, now_ms, 1, done_until_ms=done_until_ms)
            else:  # changed in place: the store holds the only reference
                run.owner, run.lease_ms, run.done_until_ms = owner, now_ms, done_until_ms
            remember(s.run_expiries, done_until_ms, fire_id)
            if record is not None:
                s.control.record([record])
        if overlap_key is not None:
            mark = s.overlap.get(overlap_key)
            if mark is not None and mark.fire == fire_id and mark.owner == owner:
                # Waiting fires (and a cancel request, whose fire waits) stay.
                mark.fire, mark.owner, mark.lease_ms, mark.at_ms = None, "", 0, 0
                if mark.empty():
                    del s.overlap[overlap_key]
        if s.run_expiries and s.run_expiries[0][0] <= now_ms:
            prune(s.run_expiries, now_ms, lambda key, at: forget_run(s.runs, key, at))
