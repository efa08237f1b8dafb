"""How an :class:`~jararaca.wire.Envelope` maps to an AMQP message and back: JSON,
persistent, its id and its headers; and how a message of the dead-letter queue reads as a
:class:`~jararaca.brokers.base.DeadLetter`. Any AMQP client may have published what comes in,
so missing ids and headers of other types are expected."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from aio_pika.abc import AbstractIncomingMessage, HeadersType
from aiormq import spec
from pamqp.header import ContentHeader

from jararaca.brokers.base import DeadLetter
from jararaca.brokers.dead_letters import DEAD_LETTERED_AT, dead_letter_of
from jararaca.wire import DEAD_LETTER_REASON, Envelope, format_instant

CONTENT_TYPE = "application/json"
PERSISTENT = 2  # AMQP delivery mode: written to disk, survives a broker restart


def message_properties(
    envelope: Envelope, timestamp: datetime, reason: str | None = None
) -> spec.Basic.Properties:
    """The AMQP properties of an envelope: JSON, persistent, its id, and its headers (plus the
    dead-letter ``reason`` and ``timestamp`` when it goes to the dead-letter exchange)."""
    headers: HeadersType = dict(envelope.headers)
    if reason is not None:
        headers[DEAD_LETTER_REASON] = reason
        headers[DEAD_LETTERED_AT] = format_instant(timestamp)
    return spec.Basic.Properties(
        content_type=CONTENT_TYPE,
        delivery_mode=PERSISTENT,
        headers=headers,
        message_id=envelope.message_id,
        timestamp=timestamp,
    )


def envelope_from_message(message: AbstractIncomingMessage) -> Envelope:
    """Rebuild the envelope of an incoming message; any AMQP client may have published it."""
    return _envelope(message.routing_key, message.headers, message.message_id, message.body)


def envelope_from_delivery(
    delivery: spec.Basic.Deliver, header: ContentHeader, body: bytes
) -> Envelope:
    """The same from the driver's frames, for consumers that skip aio-pika's message object."""
    properties = header.properties
    return _envelope(delivery.routing_key, properties.headers, properties.message_id, body)


def _envelope(
    routing_key: str | None, headers: HeadersType | None, message_id: str | None, body: bytes
) -> Envelope:
    texts = {str(key): header_text(value) for key, value in (headers or {}).items()}
    return Envelope(message_id or fallback_message_id(), routing_key or "", body, texts)


def dead_letter_from_message(message: AbstractIncomingMessage) -> DeadLetter:
    """A message of the dead-letter queue as a :class:`DeadLetter`. jararaca's headers say
    why, when and where from; failing those (RabbitMQ dead-lettered it itself: rejected by
    another client, expired...), RabbitMQ's ``x-death`` does."""
    letter = dead_letter_of(envelope_from_message(message))
    if DEAD_LETTER_REASON in letter.envelope.headers:
        return letter
    deaths = (message.headers or {}).get("x-death")
    # The most recent death first; each is a table RabbitMQ fills (any client could fake it).
    if not isinstance(deaths, list) or not deaths or not isinstance(deaths[0], dict):
        return letter
    death = deaths[0]
    reason = death.get("reason")
    when = death.get("time")
    keys = death.get("routing-keys")
    return DeadLetter(
        envelope=letter.envelope,
        reason=header_text(reason) if reason is not None else letter.reason,
        failed_at=(
            when.astimezone(UTC)
            if isinstance(when, datetime) and when.tzinfo is not None
            else letter.failed_at
        ),
        source=header_text(keys[0]) if isinstance(keys, list) and keys else letter.source,
    )


def fallback_message_id() -> str:
    """An id for a message published without one (other clients may omit it). Random, not
    derived from the content: two identical events (``{"user_id": 7}`` twice) are two
    messages, and the worker's duplicate check must not swallow the second. A redelivery of
    such a message is then not recognised as one: at least once, as promised."""
    return f"amqp-{uuid.uuid4().hex}"


def header_text(value: object) -> str:
    """Headers are strings in an :class:`Envelope`; other AMQP clients (and RabbitMQ's own
    ``x-death``) may send other types."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_instant(value) if value.tzinfo else value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, default=header_text, separators=(",", ":"))
    return str(value)
