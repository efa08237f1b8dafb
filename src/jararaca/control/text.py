"""The control plane's models as plain text for people: aligned tables, instants in UTC ISO
with a relative time ("in 3 s", "2 min ago"). Scripts use ``--json`` instead, so the layout
here may change between versions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from jararaca.control.models import (
    DeadLetterInfo,
    DelayedInfo,
    ProcessInfo,
    RunInfo,
    ScheduleInfo,
)

_UNITS = ((86_400, "d"), (3_600, "h"), (60, "min"), (1, "s"))
NONE = "-"


def iso(at: datetime) -> str:
    """``2024-05-01T12:00:00Z`` (milliseconds only when there are some)."""
    utc = at.astimezone(UTC)
    spec = "milliseconds" if utc.microsecond // 1000 else "seconds"
    return utc.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def span(seconds: float) -> str:
    """A length of time, rounded down: ``140 ms``, ``3 s``, ``2 min``, ``5 h 12 min``, ``2 d 3 h``
    (hours and days keep the next unit, which is still a large part of them)."""
    seconds = abs(seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    index, (size, unit) = next((i, u) for i, u in enumerate(_UNITS) if seconds >= u[0])
    text = f"{int(seconds // size)} {unit}"
    if size >= 3_600:
        next_size, next_unit = _UNITS[index + 1]
        rest = int(seconds % size // next_size)
        if rest:
            text += f" {rest} {next_unit}"
    return text


def relative(at: datetime, now: datetime) -> str:
    delta = (at - now).total_seconds()
    if abs(delta) < 0.05:
        return "now"
    return f"in {span(delta)}" if delta > 0 else f"{span(delta)} ago"


def when(at: datetime | None, now: datetime) -> str:
    return NONE if at is None else f"{iso(at)} ({relative(at, now)})"


def seconds(value: float | None) -> str:
    if value is None:
        return NONE
    return f"{value:.3f} s" if abs(value) < 60 else span(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart, no trailing blanks."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in (headers, *rows)
    ]
    return "\n".join(lines)


def _state(info: ScheduleInfo) -> str:
    if info.paused is None:
        return NONE
    if not info.paused:
        return "active"
    return f"paused ({info.paused_reason})" if info.paused_reason else "paused"


def _last(run: RunInfo | None, now: datetime) -> str:
    return NONE if run is None else f"{run.outcome} {relative(run.scheduled_at, now)}"


def schedules(infos: Sequence[ScheduleInfo], now: datetime, *, backend: bool) -> str:
    if not infos:
        return "the app declares no scheduled action"
    named = any(i.name != i.id for i in infos)
    headers = ["ACTION", *(["NAME"] if named else []), "GROUP", "CRON", "TZ", "NEXT FIRE"]
    if backend:
        headers += ["STATE", "LAST RUN", "RUNNING"]
    rows = []
    for i in infos:
        row = [i.id, *([i.name] if named else []), i.group, i.cron, i.tz]
        row.append(when(i.next_fires[0] if i.next_fires else None, now))
        if backend:
            row += [_state(i), _last(i.last_run, now), str(i.running)]
        rows.append(row)
    return table(headers, rows)


def describe(info: ScheduleInfo, now: datetime) -> str:
    fields = [
        ("action", info.id),
        ("name", info.name),
        ("group", info.group),
        ("cron", f"{info.cron} ({info.tz})"),
        ("state", _state(info)),
        ("running", str(info.running)),
        ("last run", _last(info.last_run, now)),
    ]
    lines = [f"{label:<11} {value}" for label, value in fields]
    fires = [when(at, now) for at in info.next_fires] or [NONE]
    lines += [f"{'next fires' if n == 0 else '':<11} {fire}" for n, fire in enumerate(fires)]
    lines += ["", f"last {len(info.runs)} run(s):" if info.runs else "no run recorded yet"]
    if info.runs:
        lines.append(runs(info.runs, now))
    return "\n".join(lines)


def backfilled(queued: Sequence[str], shown: int = 20) -> str:
    if not queued:
        return "queued no fire: every slot of the window already ran or is queued"
    lines = [f"queued {len(queued)} fire(s):", *(f"  {identity}" for identity in queued[:shown])]
    if len(queued) > shown:
        lines.append(f"  ... and {len(queued) - shown} more (--json lists them all)")
    return "\n".join(lines)


def runs(found: Sequence[RunInfo], now: datetime) -> str:
    if not found:
        return "no run recorded"
    headers = ["FIRE ID", "OUTCOME", "SCHEDULED", "LATE", "DURATION", "TRY", "WORKER", "ERROR"]
    rows = [
        [
            r.fire_id,
            r.outcome,
            when(r.scheduled_at, now),
            seconds(r.lateness_seconds),
            seconds(r.duration_seconds),
            str(r.attempt),
            r.worker or NONE,
            r.error or "",
        ]
        for r in found
    ]
    return table(headers, rows)


def delayed(found: Sequence[DelayedInfo], now: datetime) -> str:
    if not found:
        return "no delayed message pending"
    headers = ["MESSAGE ID", "KEY", "TOPIC", "DUE"]
    rows = [[d.message_id, d.idempotency_key or NONE, d.topic, when(d.due_at, now)] for d in found]
    return table(headers, rows)


def dead_letters(found: Sequence[DeadLetterInfo], now: datetime) -> str:
    if not found:
        return "no dead letter"
    headers = ["ID", "TOPIC OR ACTION", "FAILED", "REASON"]
    rows = [[d.id, d.topic_or_action, when(d.failed_at, now), d.reason] for d in found]
    return table(headers, rows)


def processes(found: Sequence[ProcessInfo], now: datetime) -> str:
    if not found:
        return "no beat or worker is sending heartbeats to this backend and namespace"
    headers = [
        "KIND",
        "STATE",
        "HOST",
        "PID",
        "VERSION",
        "STARTED",
        "LAST SEEN",
        "ID",
        "METRICS",
        "RUNS",
    ]
    rows = [
        [
            p.kind,
            "alive" if p.alive else "gone",
            p.host,
            str(p.pid),
            p.version,
            when(p.started_at, now),
            relative(p.last_seen, now),
            p.id,
            p.metrics_address or NONE,
            ", ".join(p.names) + (f" and {p.more_names} more" if p.more_names else "") or NONE,
        ]
        for p in found
    ]
    return table(headers, rows)
