"""The seed's idempotency policies for delayed messages, and their one validation.

Publishers validate once, at the API (:func:`check_enqueue_options`); backends receive only
valid values, so memory, Redis and any later backend fail the same way on bad input: they
never see it.
"""

from __future__ import annotations

from typing import Literal, get_args

from jararaca.errors import ConfigError

PayloadPolicy = Literal["ignore", "replace"]
TimePolicy = Literal["replace", "greater", "lesser"]
PAYLOAD_POLICIES: tuple[str, ...] = get_args(PayloadPolicy)
TIME_POLICIES: tuple[str, ...] = get_args(TimePolicy)


def check_enqueue_options(
    idempotency_key: object, payload_policy: object, time_policy: object
) -> None:
    """Raise ``ConfigError`` naming the bad value when an option is not one of the seed's."""
    if payload_policy not in PAYLOAD_POLICIES:
        raise ConfigError(
            f"payload_policy must be one of {', '.join(PAYLOAD_POLICIES)}, got {payload_policy!r}"
        )
    if time_policy not in TIME_POLICIES:
        raise ConfigError(
            f"time_policy must be one of {', '.join(TIME_POLICIES)}, got {time_policy!r}"
        )
    if idempotency_key is not None and (
        not isinstance(idempotency_key, str) or not idempotency_key
    ):
        raise ConfigError(f"idempotency_key must be a non-empty string, got {idempotency_key!r}")
