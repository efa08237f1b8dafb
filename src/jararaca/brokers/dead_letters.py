"""What both brokers share about the dead-letter queue: the headers jararaca puts on a dead
letter, how a replay cleans them off, and the warning when the bounded queue drops one."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime

from jararaca.brokers.base import DeadLetter
from jararaca.wire import ATTEMPT, DEAD_LETTER_REASON, KIND, REPLAY, Envelope, parse_instant

log = logging.getLogger(__name__)

# When jararaca dead-lettered the message (ISO 8601 UTC, like every instant in headers).
DEAD_LETTERED_AT = "x-jararaca-dead-lettered-at"
# What RabbitMQ adds when it dead-letters a message itself (x-death, x-first-death-* and, on
# recent versions, x-last-death-*): a replayed message must not carry its past deaths along.
_RABBITMQ_DEATH = "x-death"
_RABBITMQ_DEATH_PREFIXES = ("x-first-death-", "x-last-death-")

# Seconds between two warnings that the full dead-letter queue dropped its oldest message:
# a flood of poison messages must not flood the log as well.
OVERFLOW_WARNING_INTERVAL = 60.0


def dead_letter_of(envelope: Envelope) -> DeadLetter:
    """A dead letter as jararaca's headers describe it (the reason, when, where from)."""
    return DeadLetter(
        envelope=envelope,
        reason=envelope.headers.get(DEAD_LETTER_REASON, ""),
        failed_at=instant_or_none(envelope.headers.get(DEAD_LETTERED_AT)),
        source=envelope.routing_key,
    )


def instant_or_none(text: str | None) -> datetime | None:
    """An aware UTC instant from a header; None if missing or unreadable (any AMQP client
    may have set it)."""
    if not text:
        return None
    try:
        when = parse_instant(text)
    except ValueError:
        return None
    return when.astimezone(UTC) if when.tzinfo is not None else None


def replay_envelope(letter: DeadLetter) -> Envelope:
    """The envelope to publish again: same id and body, to the routing key it came from,
    without the dead-letter headers. A message starts over at attempt 1 (its retries were
    spent); an action fire's headers stay as they were (the worker counts a fire's attempts
    in the backend, not in its headers)."""
    envelope = letter.envelope
    headers = {
        key: value
        for key, value in envelope.headers.items()
        if key not in (DEAD_LETTER_REASON, DEAD_LETTERED_AT, _RABBITMQ_DEATH)
        and not key.startswith(_RABBITMQ_DEATH_PREFIXES)
    }
    if headers.get(KIND) != "action":
        headers[ATTEMPT] = "1"
    # The worker remembers what it ran (by message or fire id) to drop duplicates: a replay is
    # asked for, so it carries a mark of its own that makes it a new run.
    headers[REPLAY] = uuid.uuid4().hex[:12]
    return Envelope(envelope.message_id, letter.source, envelope.body, headers)


class OverflowNotice:
    """Warns that the full dead-letter ``queue`` dropped its oldest message, at most once per
    :data:`OVERFLOW_WARNING_INTERVAL` (monotonic time: a fake wall clock must not change it)."""

    def __init__(self, queue: str, limit: int) -> None:
        self.queue = queue
        self.limit = limit
        self._quiet_until = float("-inf")

    @property
    def due(self) -> bool:
        """Whether a drop would be logged now (RabbitMQ skips counting the queue if not)."""
        return time.monotonic() >= self._quiet_until

    def dropped(self) -> None:
        if not self.due:
            return
        self._quiet_until = time.monotonic() + OVERFLOW_WARNING_INTERVAL
        log.warning(
            "the dead-letter queue %s holds %d messages, its limit (JARARACA_DEAD_LETTER_MAX): "
            "the oldest was dropped. List, replay or purge the dead letters "
            "(jararaca dead-letters), or raise the limit; this warning repeats at most once "
            "a minute",
            self.queue,
            self.limit,
        )
