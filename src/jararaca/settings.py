"""Settings read from the environment, in one place."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from jararaca.errors import ConfigError

N = TypeVar("N", int, float)
DEFAULT_LEASE_SECONDS = 30.0
DEFAULT_MAX_MESSAGE_BYTES = 1_048_576
DEFAULT_DEDUPE_SECONDS = 600


def _positive(name: str, default: N, parse: Callable[[str], N], unit: str) -> N:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = parse(raw)
        if value <= 0:
            raise ValueError
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a positive number of {unit}") from None
    return value


def lease_seconds() -> float:
    """``JARARACA_LEASE_SECONDS``: how long a claim or run lease lasts (renewed at a third)."""
    return _positive("JARARACA_LEASE_SECONDS", DEFAULT_LEASE_SECONDS, float, "seconds")


def max_message_bytes() -> int:
    """``JARARACA_MAX_MESSAGE_BYTES``: the largest body published or handled (default 1 MiB)."""
    return _positive("JARARACA_MAX_MESSAGE_BYTES", DEFAULT_MAX_MESSAGE_BYTES, int, "bytes")


def dedupe_seconds() -> int:
    """``JARARACA_DEDUPE_SECONDS``: how long a handled message is remembered, so that a copy
    of it (republished by a beat that died, or redelivered) is not handled again. Fires are
    remembered for a day; messages are many, so their records live for this long (10 min)."""
    return _positive("JARARACA_DEDUPE_SECONDS", DEFAULT_DEDUPE_SECONDS, int, "seconds")


DEFAULT_DISPATCH_LEAD_MS = 50


def dispatch_lead_seconds() -> float:
    """``JARARACA_DISPATCH_LEAD_MS``: how long before its instant a beat claims and publishes a
    cron fire, for the worker to hold until the instant (default 50 ms; 0 publishes at the
    instant). Claim, publish and delivery then happen before the slot instead of after it."""
    raw = os.environ.get("JARARACA_DISPATCH_LEAD_MS", "")
    if not raw:
        return DEFAULT_DISPATCH_LEAD_MS / 1000
    try:
        value = float(raw)
        if not 0 <= value <= 10_000:
            raise ValueError
    except ValueError:
        raise ConfigError(
            f"JARARACA_DISPATCH_LEAD_MS={raw!r} is not a number of milliseconds from 0 to 10000"
        ) from None
    return value / 1000


DEFAULT_RUN_HISTORY = 100


def run_history() -> int:
    """``JARARACA_RUN_HISTORY``: how many runs are kept per action in the run history."""
    return _positive("JARARACA_RUN_HISTORY", DEFAULT_RUN_HISTORY, int, "runs")


DEFAULT_DEAD_LETTER_MAX = 10_000


def dead_letter_max() -> int:
    """``JARARACA_DEAD_LETTER_MAX``: how many messages the dead-letter queue keeps (default
    10,000); each one dead-lettered beyond that drops the oldest, which a warning says (at
    most once a minute). On RabbitMQ it is the queue's ``x-max-length``, fixed when the
    queue is created: to change it, delete the queue (RabbitMQ refuses to declare it again
    with another limit)."""
    return _positive("JARARACA_DEAD_LETTER_MAX", DEFAULT_DEAD_LETTER_MAX, int, "messages")


EVENT_LOOPS = ("auto", "uvloop", "asyncio")


def event_loop_choice() -> str:
    """``JARARACA_EVENT_LOOP``: the event loop a service runs on under ``run()`` and the CLI:
    ``auto`` (default) is uvloop when it is installed (the ``[uvloop]`` extra, part of
    ``[distributed]``), else asyncio's; ``uvloop`` insists on it; ``asyncio`` never uses it."""
    raw = os.environ.get("JARARACA_EVENT_LOOP", "").strip().lower() or "auto"
    if raw not in EVENT_LOOPS:
        raise ConfigError(
            f"JARARACA_EVENT_LOOP={os.environ['JARARACA_EVENT_LOOP']!r} is not an event loop "
            f"jararaca knows: use one of {', '.join(EVENT_LOOPS)}"
        )
    return raw
