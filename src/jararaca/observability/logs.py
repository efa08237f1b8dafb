"""Logging set-up for the commands: the level, and a text or JSON line per record.

JSON lines carry ``timestamp``, ``level``, ``logger`` and ``message``, plus the structured
fields a record was given under ``extra={"fields": {...}}`` (a run's fire id, outcome,
duration, ...), so a log pipeline can filter on them without parsing the message. Nothing
else changes the format: the text lines stay as they were.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

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


def configure_logging(level: str, log_format: LogFormat = "text") -> None:
    """Send every logger's records at ``level`` and above to stderr in ``log_format``."""
    handler = logging.StreamHandler()
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
