"""``Publisher``: turns messages into envelopes and sends them now (broker) or later (the
backend's delayed queue); ``use_publisher()`` returns the one bound to the current context."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jararaca import wire
from jararaca.backends.base import PublisherStore
from jararaca.brokers.base import Broker
from jararaca.clock import Clock, SystemClock
from jararaca.errors import ConfigError, PublisherNotBoundError
from jararaca.messagebus.context import bind_sender, bound_sender
from jararaca.messagebus.message import Message
from jararaca.messagebus.message_ids import new_message_id
from jararaca.observability import tracing
from jararaca.policies import PayloadPolicy, TimePolicy, check_enqueue_options
from jararaca.settings import max_message_bytes

# A due instant further away than this is a mistake (seconds for milliseconds, a year typo),
# and past year 9999 datetime cannot even represent it.
MAX_DELAY = timedelta(days=100 * 365)


class Publisher:
    """Publishes messages now (broker) or later (the backend's delayed queue)."""

    def __init__(self, backend: PublisherStore, broker: Broker, clock: Clock | None = None) -> None:
        self.backend = backend
        self.broker = broker
        self.clock = clock or SystemClock()

    async def publish(self, message: Message) -> str:
        envelope = message_envelope(message, now=self.clock.now())
        with tracing.producing("jararaca.publish", [envelope], {}) as stamped:
            await self.broker.publish(stamped)
        return envelope.message_id

    async def delay(
        self,
        message: Message,
        seconds: float,
        *,
        idempotency_key: str | None = None,
        payload_policy: PayloadPolicy = "ignore",
        time_policy: TimePolicy = "replace",
    ) -> str:
        now = self.clock.now()
        due = now + _delay(seconds)
        return await self._enqueue(message, now, due, idempotency_key, payload_policy, time_policy)

    async def schedule(
        self,
        message: Message,
        when: datetime,
        timezone: tzinfo | str | None = None,
        *,
        idempotency_key: str | None = None,
        payload_policy: PayloadPolicy = "ignore",
        time_policy: TimePolicy = "replace",
    ) -> str:
        now = self.clock.now()
        due = _as_utc(when, timezone)
        if due - now > MAX_DELAY:
            raise ConfigError(
                f"schedule() at {when.isoformat()} is more than {MAX_DELAY.days:,} days away: "
                "pass a nearer instant (is the year right?)"
            )
        return await self._enqueue(message, now, due, idempotency_key, payload_policy, time_policy)

    async def delay_many(self, items: Iterable[tuple[Message, float]]) -> list[str]:
        """Enqueue many messages (no idempotency keys) in one backend round trip."""
        now = self.clock.now()
        limit = max_message_bytes()
        entries = []
        for message, seconds in items:
            due = now + _delay(seconds)
            entries.append((message_envelope(message, now=now, due=due, limit=limit), due))
        envelopes = [envelope for envelope, _ in entries]
        with tracing.producing("jararaca.delay", envelopes, {}) as stamped:
            dues = [due for _, due in entries]
            await self.backend.enqueue_delayed_many(list(zip(stamped, dues, strict=True)))
        return [envelope.message_id for envelope in envelopes]

    async def cancel(self, idempotency_key: str) -> bool:
        """Remove the pending delayed message enqueued with ``idempotency_key``; whether there
        was one (a message already dispatched cannot be called back)."""
        check_enqueue_options(idempotency_key, "ignore", "replace")
        if idempotency_key is None:
            raise ConfigError("cancel() needs the idempotency_key the message was enqueued with")
        return await self.backend.cancel_delayed(task_id=task_id_for_key(idempotency_key))

    async def _enqueue(
        self,
        message: Message,
        now: datetime,
        due: datetime,
        idempotency_key: str | None,
        payload_policy: PayloadPolicy,
        time_policy: TimePolicy,
    ) -> str:
        check_enqueue_options(idempotency_key, payload_policy, time_policy)
        envelope = message_envelope(message, now=now, due=due)
        task_id = task_id_for_key(idempotency_key) if idempotency_key else envelope.message_id
        attributes = {"jararaca.task_id": task_id}
        with tracing.producing("jararaca.delay", [envelope], attributes) as stamped:
            await self.backend.enqueue_delayed(
                stamped[0],
                due,
                task_id=task_id,
                payload_policy=payload_policy,
                time_policy=time_policy,
            )
        return envelope.message_id


def task_id_for_key(idempotency_key: str) -> str:
    """The delayed-queue task id of a user's idempotency key: prefixed so that it never meets
    the internal ``retry:``/``recheck:`` tasks."""
    return f"key:{idempotency_key}"


def message_envelope(
    message: Message, *, now: datetime, due: datetime | None = None, limit: int | None = None
) -> wire.Envelope:
    """The wire form of a message: its JSON body, topic and ``x-jararaca-*`` headers.
    ``limit``: the largest body (``JARARACA_MAX_MESSAGE_BYTES``, read here when not given:
    a batch reads it once)."""
    if not isinstance(message, Message):
        raise ConfigError(
            f"expected a jararaca Message to send, got {type(message).__qualname__}: "
            "subclass jararaca.Message and set MESSAGE_TOPIC"
        )
    topic = type(message).topic()
    headers = {
        wire.KIND: "message",
        wire.TOPIC: topic,
        wire.PUBLISHED_AT: wire.format_instant(now),
        wire.ATTEMPT: "1",
    }
    if due is not None:
        headers[wire.DUE_AT] = wire.format_instant(due)
    body = message.model_dump_json().encode("utf-8")
    limit = max_message_bytes() if limit is None else limit
    if len(body) > limit:
        raise ConfigError(
            f"{type(message).__qualname__} is {len(body):,} bytes of JSON, over the "
            f"{limit:,}-byte limit: send a reference (an id, a URL) instead of the data, or "
            "raise JARARACA_MAX_MESSAGE_BYTES"
        )
    return wire.Envelope(message_id=new_message_id(), routing_key=topic, body=body, headers=headers)


def _delay(seconds: object) -> timedelta:
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or seconds < 0
    ):
        raise ConfigError(f"delay seconds must be a finite number >= 0, got {seconds!r}")
    if seconds > MAX_DELAY.total_seconds():
        raise ConfigError(
            f"delay of {seconds!r} seconds is over the limit of {MAX_DELAY.total_seconds():,.0f} "
            f"seconds ({MAX_DELAY.days:,} days): pass seconds, not milliseconds, or schedule() "
            "a date"
        )
    return timedelta(seconds=seconds)


def _as_utc(when: datetime, timezone: tzinfo | str | None) -> datetime:
    if not isinstance(when, datetime):
        raise ConfigError(f"schedule() needs a datetime, got {when!r}")
    if isinstance(timezone, str):
        try:
            timezone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"unknown time zone {timezone!r}: use an IANA name such as 'Europe/Lisbon'"
            ) from None
    aware = when if when.tzinfo is not None and when.utcoffset() is not None else None
    try:
        return (aware or when.replace(tzinfo=timezone or UTC)).astimezone(UTC)
    except OverflowError:
        raise ConfigError(
            f"schedule() at {when.isoformat()} is out of range: datetime cannot represent it "
            "in UTC; pass an instant between years 1 and 9999"
        ) from None


def use_publisher() -> Publisher:
    """The publisher bound to this context (inside actions and handlers, or ``connect()``)."""
    sender = bound_sender()
    if not isinstance(sender, Publisher):
        raise PublisherNotBoundError(
            f"the bound sender is a {type(sender).__qualname__}, not a jararaca Publisher"
        )
    return sender


@contextmanager
def bind_publisher(publisher: Publisher) -> Iterator[Publisher]:
    """Bind ``publisher`` for the block: messages sent inside it go through it."""
    with bind_sender(publisher):
        yield publisher
