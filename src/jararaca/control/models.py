"""What the control plane answers: frozen pydantic models, so that ``model_dump(mode="json")``
is the machine-readable form the CLI's ``--json`` prints.

Instants are aware UTC datetimes. The models are built from the backends' records
(:mod:`jararaca.backends.records`) and the broker's dead letters; they add only what an operator
reads off them (a run's duration and lateness, whether a process is alive).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, computed_field

from jararaca.backends.records import Outcome, ProcessKind, ProcessRecord, RunRecord


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class RunInfo(_Model):
    """How one fire of an action went (or is going)."""

    fire_id: str
    action_id: str
    scheduled_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    outcome: Outcome
    error: str | None = None  # one line
    worker: str | None = None
    attempt: int = 1

    @computed_field  # type: ignore[prop-decorator]
    @property
    def duration_seconds(self) -> float | None:
        """From start to end; None while running or for a fire that never started."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def lateness_seconds(self) -> float | None:
        """How long after its scheduled instant the run started."""
        if self.started_at is None:
            return None
        return (self.started_at - self.scheduled_at).total_seconds()

    @classmethod
    def from_record(cls, record: RunRecord) -> RunInfo:
        return cls(
            fire_id=record.fire_id,
            action_id=record.action_id,
            scheduled_at=record.scheduled_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            outcome=record.outcome,
            error=record.error,
            worker=record.worker,
            attempt=record.attempt,
        )


class ScheduleInfo(_Model):
    """One scheduled action: its declaration, its next fires and what the backend knows."""

    id: str
    name: str  # what to type on the command line: the action's name= or its method name
    group: str
    cron: str
    tz: str
    # None when nothing was asked of a backend (``jararaca schedules list`` without one).
    paused: bool | None = None
    paused_reason: str | None = None
    next_fires: list[datetime]
    last_run: RunInfo | None = None
    running: int = 0  # runs whose outcome is "running" in the recent history
    runs: list[RunInfo] = []  # the last runs, newest first (filled by describe)
    topic: str | None = None  # a dynamic schedule's: where its message is published


class DelayedInfo(_Model):
    """A message waiting in the delayed queue."""

    message_id: str
    idempotency_key: str | None
    topic: str
    due_at: datetime
    task_id: str


class DeadLetterInfo(_Model):
    """A message the broker holds in the dead-letter queue."""

    id: str
    topic_or_action: str
    reason: str
    failed_at: datetime | None
    source: str = ""  # the routing key it came from, where a replay publishes it again


class ProcessInfo(_Model):
    """A beat's or worker's last heartbeat."""

    id: str
    kind: ProcessKind
    host: str
    pid: int
    version: str
    started_at: datetime
    last_seen: datetime
    names: list[str]  # its actions or handlers
    alive: bool  # seen within three lease periods
    # Its /metrics, /healthz and /readyz (http://host:port), when run with --metrics-port.
    metrics_address: str | None = None
    more_names: int = 0  # how many more it runs than ``names`` lists (the first 100)

    @classmethod
    def from_record(cls, record: ProcessRecord, *, alive: bool) -> ProcessInfo:
        return cls(
            id=record.process_id,
            kind=record.kind,
            host=record.host,
            pid=record.pid,
            version=record.version,
            started_at=record.started_at,
            last_seen=record.last_seen,
            names=list(record.names),
            alive=alive,
            metrics_address=record.metrics_address,
            more_names=record.more_names,
        )
