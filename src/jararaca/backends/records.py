"""What the backends keep for operators: run records (the run history) and process heartbeats.

Plain frozen dataclasses with a compact JSON form, the same in every backend so that a record
written by a Redis worker reads back the same through any process. Time fields are aware UTC
datetimes stored as epoch milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, get_args

from jararaca import stored_json
from jararaca.clock import epoch_ms, from_epoch_ms

Outcome = Literal[
    "running",
    "succeeded",
    "failed",
    "timed_out",
    "cancelled",
    "skipped_overlap",
    "skipped_paused",
]
OUTCOMES: tuple[str, ...] = get_args(Outcome)
ProcessKind = Literal["beat", "worker", "scheduler"]


def _ms(when: datetime | None) -> int | None:
    return None if when is None else epoch_ms(when)


def _at(ms: Any) -> datetime | None:
    return None if ms is None else from_epoch_ms(int(ms))


def one_line(error: BaseException | str | None, limit: int = 500) -> str | None:
    """An error as one line of at most ``limit`` characters (what run records keep)."""
    if error is None:
        return None
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class RunRecord:
    """How one fire of an action went (or is going)."""

    fire_id: str
    action_id: str
    scheduled_at: datetime
    outcome: Outcome
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    worker: str | None = None
    attempt: int = 1

    def ended(
        self,
        outcome: Outcome,
        *,
        finished_at: datetime,
        error: BaseException | str | None = None,
    ) -> RunRecord:
        return replace(self, outcome=outcome, finished_at=finished_at, error=one_line(error))

    def to_json(self) -> str:
        return stored_json.dumps(
            {
                "f": self.fire_id,
                "a": self.action_id,
                "s": epoch_ms(self.scheduled_at),
                "o": self.outcome,
                "st": _ms(self.started_at),
                "fi": _ms(self.finished_at),
                "e": self.error,
                "w": self.worker,
                "n": self.attempt,
            }
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> RunRecord:
        data = stored_json.loads(raw)
        return cls(
            fire_id=data["f"],
            action_id=data["a"],
            scheduled_at=from_epoch_ms(int(data["s"])),
            outcome=data["o"],
            started_at=_at(data.get("st")),
            finished_at=_at(data.get("fi")),
            error=data.get("e"),
            worker=data.get("w"),
            attempt=int(data.get("n") or 1),
        )


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    """A beat's or worker's heartbeat: who it is and what it runs."""

    process_id: str
    kind: ProcessKind
    host: str
    pid: int
    version: str
    started_at: datetime
    last_seen: datetime
    names: tuple[str, ...] = field(default_factory=tuple)  # its actions or handlers
    # Seconds between two heartbeats of this process (its lease period): how silent it may
    # be before it counts as gone is measured in its own periods, whatever the reader's.
    period_seconds: float = 30.0
    # Where it serves /metrics, /healthz and /readyz (--metrics-port), if it does.
    metrics_address: str | None = None
    # How many more actions or handlers it runs than ``names`` lists (a heartbeat lists the
    # first HEARTBEAT_NAMES: at 100,000 actions, all of them made every heartbeat 4 MB).
    more_names: int = 0

    def seen(self, now: datetime) -> ProcessRecord:
        return replace(self, last_seen=now)

    def to_json(self) -> str:
        return stored_json.dumps(
            {
                "id": self.process_id,
                "k": self.kind,
                "h": self.host,
                "p": self.pid,
                "v": self.version,
                "st": epoch_ms(self.started_at),
                "ls": epoch_ms(self.last_seen),
                "n": list(self.names),
                "pp": self.period_seconds,
                "m": self.metrics_address,
                "nm": self.more_names,
            }
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> ProcessRecord:
        data = stored_json.loads(raw)
        return cls(
            process_id=data["id"],
            kind=data["k"],
            host=data["h"],
            pid=int(data["p"]),
            version=data["v"],
            started_at=from_epoch_ms(int(data["st"])),
            last_seen=from_epoch_ms(int(data["ls"])),
            names=tuple(data.get("n") or ()),
            period_seconds=float(data.get("pp") or 30.0),
            metrics_address=data.get("m"),
            more_names=int(data.get("nm") or 0),
        )


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """A dynamic schedule: publish ``body`` to ``topic`` on ``cron`` (read in ``tz``)."""

    schedule_id: str
    cron: str
    tz: str
    topic: str
    body: str  # the message's JSON, exactly what is published
    catch_up: str = "latest"
    jitter: float = 0.0
    created_at: datetime | None = None

    def to_json(self) -> str:
        return stored_json.dumps(
            {
                "id": self.schedule_id,
                "cron": self.cron,
                "tz": self.tz,
                "topic": self.topic,
                "body": self.body,
                "catch_up": self.catch_up,
                "jitter": self.jitter,
                "created": _ms(self.created_at),
            }
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> ScheduleRecord:
        data = stored_json.loads(raw)
        return cls(
            schedule_id=data["id"],
            cron=data["cron"],
            tz=data["tz"],
            topic=data["topic"],
            body=data["body"],
            catch_up=data.get("catch_up", "latest"),
            jitter=float(data.get("jitter") or 0.0),
            created_at=_at(data.get("created")),
        )
