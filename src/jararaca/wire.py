"""What travels between publisher, beat, broker and worker: the :class:`Envelope`.

The body is always the JSON of the payload (never pickle); metadata rides in AMQP properties
(``message_id``) and ``x-jararaca-*`` headers so that other services can publish and operators
can read what is queued.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from jararaca import stored_json

KIND = "x-jararaca-kind"
ACTION = "x-jararaca-action"
TOPIC = "x-jararaca-topic"
SCHEDULED_AT = "x-jararaca-scheduled-at"
DISPATCHED_AT = "x-jararaca-dispatched-at"
DUE_AT = "x-jararaca-due-at"
PUBLISHED_AT = "x-jararaca-published-at"
ATTEMPT = "x-jararaca-attempt"
CATCH_UP = "x-jararaca-catch-up"  # "1" on fires run late after downtime
SCHEDULE = "x-jararaca-schedule"  # the dynamic schedule a message fire comes from
# On a fire the beat published ahead of its instant (JARARACA_DISPATCH_LEAD_MS): the worker
# holds it until then, so that at the instant only the run itself remains to do.
NOT_BEFORE = "x-jararaca-not-before"
REPLAY = "x-jararaca-replay"  # set on a dead letter replayed by an operator: a new run of it
DEAD_LETTER_REASON = "x-jararaca-dead-letter-reason"


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message on the wire: id, routing key, JSON body and string headers."""

    message_id: str
    routing_key: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def attempt(self) -> int:
        marked = self.headers.get(ATTEMPT)
        if marked is None:  # a first attempt carries no mark
            return 1
        try:
            return max(1, int(marked))
        except ValueError:
            return 1

    def with_headers(self, **updates: str) -> Envelope:
        """A copy with some headers replaced (keys use ``_`` for ``-``, without the prefix)."""
        merged = dict(self.headers)
        for key, value in updates.items():
            merged["x-jararaca-" + key.replace("_", "-")] = value
        # Built directly: dataclasses.replace costs a few microseconds, paid per message.
        return Envelope(self.message_id, self.routing_key, self.body, merged)

    def to_json(self) -> str:
        """How the backend stores an envelope (the body is our own JSON, so UTF-8)."""
        return stored_json.dumps(
            {
                "id": self.message_id,
                "rk": self.routing_key,
                "body": self.body.decode("utf-8"),
                "headers": dict(self.headers),
            }
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Envelope:
        return cls.from_dict(stored_json.loads(raw))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Envelope:
        """The inverse of :meth:`to_json` once parsed (backends nest envelopes in entries)."""
        return cls(
            message_id=data["id"],
            routing_key=data["rk"],
            body=data["body"].encode("utf-8"),
            headers=data["headers"],
        )


@lru_cache(maxsize=4096)
def format_instant(when: datetime) -> str:
    """ISO 8601 in UTC with millisecond precision, as headers carry instants.

    Kept for the instants seen last: a burst's messages share their due and dispatch
    instants, and formatting one costs more than a microsecond. Equal instants in other zones
    are one key, so an aware instant is written in UTC whatever its zone."""
    if when.tzinfo is not None and when.utcoffset():
        when = when.astimezone(UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@lru_cache(maxsize=4096)
def parse_instant(text: str) -> datetime:
    """The instant a header carries (kept like :func:`format_instant`'s, for the same reason)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
