"""Logging set-up for the commands: the level, and a text or JSON line per record.

JSON lines carry ``timestamp``, ``level``, ``logger`` and ``message``, plus the structured
fields a record was given under ``extra={"fields": {...}}`` (a run's fire id, outcome,
duration, ...), so a log pipeline can filter on them without parsing the message. Nothing
else changes the format: the text lines stay as they were.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The attribute a record's structured fields travel in (``extra={"fields": ...}``).
FIELDS = "fields"
# The AMQP driver logs every reconnection attempt (once a second during an outage); jararaca
# logs the outage once and its end, so the driver's own lines are only noise.
QUIET_LOGGERS = ("aiormq", "aio_pika")
_OURS = "_jararaca_handler"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what log shippers (Loki, Elastic, CloudWatch) read as is."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, Mapping):
            for key, value in fields.items():
                line.setdefault(str(key), value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TurnBufferedHandler(logging.StreamHandler[TextIO]):
    """Writes the lines logged in one event-loop turn to stderr with one write.

    A worker logs a line per handled message, and a write per line cost it more than the
    formatting (a system call each: 7% of its CPU in a 10,000-message burst, 2026-11-28).
    Lines logged on the loop's thread wait only until the end of the current turn; a line
    logged with no running loop (start-up, shutdown, another thread) is written at once,
    after whatever the loop's thread had waiting, so the order is kept.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self._lines: list[str] = []
        # The loop a flush is scheduled on: a loop stopped before running it leaves it there,
        # so a line of another loop schedules its own rather than wait on that one.
        self._flush_loop: asyncio.AbstractEventLoop | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._lines.append(line)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if self._flush_loop is not loop:
            self._flush_loop = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # made by Handler.__init__
            self._flush_loop = None
            if not self._lines:
                return
            text = self.terminator.join(self._lines) + self.terminator
            self._lines.clear()
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):  # stderr closed or gone: nothing to tell anyone
                pass


def configure_logging(level: str, log_format: LogFormat = "text") -> None:
    """Send every logger's records at ``level`` and above to stderr in ``log_format``."""
    handler = TurnBufferedHandler()
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    # Replace ours, not add: a command run twice in one process (tests) would print every
    # line twice. Handlers others installed (pytest's, an app's) are left alone.
    for old in list(root.handlers):
        if getattr(old, _OURS, False):
            root.removeHandler(old)
    setattr(handler, _OURS, True)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
