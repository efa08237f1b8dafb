"""The memory backend's control state: run history, paused actions, process heartbeats.

Kept beside the hot-path state of :mod:`jararaca.backends.memory`, which mixes
:class:`MemoryControl` into its backend and writes run records from ``begin_run`` and
``finish_run`` through :meth:`ControlState.record`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from jararaca.backends.records import ProcessRecord, RunRecord, ScheduleRecord
from jararaca.clock import epoch_ms


@dataclass
class ControlState:
    history_limit: int
    history: dict[str, dict[str, RunRecord]] = field(default_factory=dict)  # action -> fire ->
    paused: dict[str, str] = field(default_factory=dict)
    processes: dict[str, tuple[int, ProcessRecord]] = field(default_factory=dict)  # expiry ms
    schedules: dict[str, ScheduleRecord] = field(default_factory=dict)
    schedules_version: int = 0

    def record(self, records: Sequence[RunRecord]) -> None:
        for rec in records:
            runs = self.history.setdefault(rec.action_id, {})
            runs[rec.fire_id] = rec
            if len(runs) > self.history_limit:
                # Oldest scheduled first out, as the Redis backend trims its sorted set.
                ordered = sorted(runs.values(), key=lambda r: (r.scheduled_at, r.fire_id))
                for old in ordered[: len(runs) - self.history_limit]:
                    del runs[old.fire_id]

    def knows_fire(self, action_id: str, fire_id: str) -> bool:
        return fire_id in self.history.get(action_id, {})


class MemoryControl:
    """RunHistory, Pauses and Processes on a :class:`ControlState`."""

    def _control_state(self) -> ControlState:
        raise NotImplementedError  # the backend provides its store's state

    async def record_runs(self, records: Sequence[RunRecord]) -> None:
        self._control_state().record(records)

    async def run_history(self, action_id: str, *, limit: int) -> list[RunRecord]:
        runs = self._control_state().history.get(action_id, {}).values()
        ordered = sorted(runs, key=lambda r: (r.scheduled_at, r.fire_id), reverse=True)
        return ordered[:limit]

    async def pause(self, action_id: str, reason: str) -> None:
        self._control_state().paused[action_id] = reason

    async def resume(self, action_id: str) -> bool:
        return self._control_state().paused.pop(action_id, None) is not None

    async def paused(self) -> dict[str, str]:
        return dict(self._control_state().paused)

    async def heartbeat(self, record: ProcessRecord, *, keep: timedelta) -> None:
        expiry = epoch_ms(record.last_seen + keep)
        self._control_state().processes[record.process_id] = (expiry, record)

    async def processes(self) -> list[ProcessRecord]:
        state = self._control_state()
        newest = max((r.last_seen for _, r in state.processes.values()), default=None)
        if newest is not None:
            # Heartbeats expire on their own: measured against the latest one seen, since
            # this store reads no clock.
            _expire(state, newest)
        return sorted((r for _, r in state.processes.values()), key=lambda r: r.process_id)

    async def forget_process(self, process_id: str) -> None:
        self._control_state().processes.pop(process_id, None)

    async def put_schedule(self, schedule: ScheduleRecord) -> None:
        state = self._control_state()
        state.schedules[schedule.schedule_id] = schedule
        state.schedules_version += 1

    async def delete_schedule(self, schedule_id: str) -> bool:
        state = self._control_state()
        found = state.schedules.pop(schedule_id, None) is not None
        state.schedules_version += found
        return found

    async def dynamic_schedules(self) -> list[ScheduleRecord]:
        return sorted(self._control_state().schedules.values(), key=lambda s: s.schedule_id)

    async def schedules_version(self) -> int:
        return self._control_state().schedules_version


def _expire(state: ControlState, now: datetime) -> None:
    now_ms = epoch_ms(now)
    for process_id, (expiry, _) in list(state.processes.items()):
        if expiry <= now_ms:
            del state.processes[process_id]
