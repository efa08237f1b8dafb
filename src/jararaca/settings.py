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
