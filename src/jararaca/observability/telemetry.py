"""What the engine tells operators as it works: a log line per run and per handled message, and
the same events counted as metrics when ``--metrics-port`` is on.

The beat and the worker report to one :class:`Telemetry`; it writes the INFO line and hands the
event to its :class:`Metrics`. The base :class:`Metrics` ignores everything (no metrics
extra needed, nothing to pay); ``observability.prometheus.PrometheusMetrics`` counts. Labels
are action and handler ids of the app and fixed outcome words, never a message id, so the
number of series stays bounded by what the app declares.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Literal

from jararaca.backends.records import Outcome
from jararaca.observability import tracing

log = logging.getLogger("jararaca.runs")

FireOutcome = Literal["dispatched", "skipped_overlap", "skipped_paused", "missed"]
MessageOutcome = Literal["handled", "failed", "retried", "dead_lettered"]
# The handler label of a message no handler of the app took (an unknown topic or action).
NO_HANDLER = "(none)"


class Metrics:
    """Where events are counted; this base counts nothing."""

    def fires(self, action: str, outcome: FireOutcome, count: int = 1) -> None:
        """``count`` fires of ``action`` went ``outcome``."""

    def run_ended(self, action: str, outcome: Outcome, duration: float, lateness: float) -> None:
        """A run of ``action`` ended; ``lateness`` is its start minus its scheduled instant."""

    def message(self, handler: str, outcome: MessageOutcome) -> None:
        """A message delivery to ``handler`` ended ``outcome``."""

    def delayed_published(self, lateness: Iterable[float]) -> None:
        """Delayed messages went out to the broker, each ``lateness`` s after its due instant
        (computed as it is iterated, so that counting nothing costs nothing per message)."""

    def watch_running(self, count: Callable[[], int]) -> None:
        """``count()`` tells, when scraped, how many runs are in user code now."""


class Telemetry:
    """The one place the beat and worker report runs, messages and fires to."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self.metrics = metrics or Metrics()

    def fires(self, action: str, outcome: FireOutcome, count: int = 1) -> None:
        if count:
            self.metrics.fires(action, outcome, count)

    def run_ended(
        self,
        *,
        fire_id: str,
        action: str,
        outcome: Outcome,
        scheduled_at: datetime,
        started_at: datetime,
        finished_at: datetime,
        attempt: int,
        error: BaseException | None = None,
    ) -> None:
        duration = (finished_at - started_at).total_seconds()
        lateness = (started_at - scheduled_at).total_seconds()
        self.metrics.run_ended(action, outcome, duration, lateness)
        tracing.note_outcome(outcome, error)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "run %s of %s %s in %.3f s, %.3f s after its slot (attempt %d)",
                fire_id,
                action,
                outcome,
                duration,
                lateness,
                attempt,
                extra={
                    "fields": {
                        "fire_id": fire_id,
                        "action": action,
                        "outcome": outcome,
                        "duration_seconds": round(duration, 6),
                        "lateness_seconds": round(lateness, 6),
                        "attempt": attempt,
                    }
                },
            )

    def message_ended(
        self,
        *,
        message_id: str,
        handler: str,
        topic: str,
        outcome: MessageOutcome,
        started_at: datetime,
        finished_at: datetime,
        expected_at: datetime | None,
        attempt: int,
    ) -> None:
        """A handler ran on a message; ``expected_at`` is when it was due (delayed) or
        published, the instant its lateness is measured from."""
        self.metrics.message(handler, outcome)
        tracing.note_outcome(outcome)
        if not log.isEnabledFor(logging.INFO):
            return
        duration = (finished_at - started_at).total_seconds()
        lateness = None if expected_at is None else (started_at - expected_at).total_seconds()
        late = "" if lateness is None else f", {lateness:.3f} s after it was due"
        log.info(
            "message %s on %s %s by %s in %.3f s%s (attempt %d)",
            message_id,
            topic,
            outcome,
            handler,
            duration,
            late,
            attempt,
            extra={
                "fields": {
                    "message_id": message_id,
                    "handler": handler,
                    "topic": topic,
                    "outcome": outcome,
                    "duration_seconds": round(duration, 6),
                    "lateness_seconds": None if lateness is None else round(lateness, 6),
                    "attempt": attempt,
                }
            },
        )

    def count_message(self, handler: str, outcome: MessageOutcome) -> None:
        """Counted only, no line: a retry scheduled, or a delivery dead-lettered (the worker
        logs those itself, with the reason)."""
        self.metrics.message(handler, outcome)

    def delayed_published(self, lateness: Iterable[float]) -> None:
        self.metrics.delayed_published(lateness)
