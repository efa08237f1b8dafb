"""Settings read from the environment, in one place."""

from __future__ import annotations

import os

from jararaca.errors import ConfigError

DEFAULT_LEASE_SECONDS = 30.0


def lease_seconds() -> float:
    """``JARARACA_LEASE_SECONDS``: how long a claim or run lease lasts (renewed at a third)."""
    raw = os.environ.get("JARARACA_LEASE_SECONDS", "")
    if not raw:
        return DEFAULT_LEASE_SECONDS
    try:
        value = float(raw)
        if value <= 0:
            raise ValueError
    except ValueError:
        raise ConfigError(
            f"JARARACA_LEASE_SECONDS={raw!r} is not a positive number of seconds"
        ) from None
    return value


DEFAULT_MAX_MESSAGE_BYTES = 1_048_576


def max_message_bytes() -> int:
    """``JARARACA_MAX_MESSAGE_BYTES``: the largest body published or handled (default 1 MiB)."""
    raw = os.environ.get("JARARACA_MAX_MESSAGE_BYTES", "")
    if not raw:
        return DEFAULT_MAX_MESSAGE_BYTES
    try:
        value = int(raw)
        if value <= 0:
            raise ValueError
    except ValueError:
        raise ConfigError(
            f"JARARACA_MAX_MESSAGE_BYTES={raw!r} is not a positive number of bytes"
        ) from None
    return value


DEFAULT_DEDUPE_SECONDS = 600


def dedupe_seconds() -> int:
    """``JARARACA_DEDUPE_SECONDS``: how long a handled message is remembered, so that a copy
    of it (republished by a beat that died, or redelivered) is not handled again. Fires are
    remembered for a day; messages are many, so their records live for this long (10 min)."""
    raw = os.environ.get("JARARACA_DEDUPE_SECONDS", "")
    if not raw:
        return DEFAULT_DEDUPE_SECONDS
    try:
        value = int(raw)
        if value <= 0:
            raise ValueError
    except ValueError:
        raise ConfigError(
            f"JARARACA_DEDUPE_SECONDS={raw!r} is not a positive number of seconds"
        ) from None
    return value
