"""The publisher bound to the current context, and ``connect()`` to bind one yourself."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jararaca.backends.base import (
    PAYLOAD_POLICIES,
    TIME_POLICIES,
    Backend,
    PayloadPolicy,
    TimePolicy,
)
from jararaca.brokers.base import Broker
from jararaca.clock import Clock, SystemClock
from jararaca.errors import ConfigError, PublisherNotBoundError
from jararaca.messagebus.message import Message, message_envelope

log = logging.getLogger("jararaca.publisher")
_current: ContextVar[Publisher | None] = ContextVar("jararaca_publisher", default=None)


class Publisher:
    """Publishes messages now (broker) or later (the backend's delayed queue)."""

    def __init__(self, backend: Backend, broker: Broker, clock: Clock | None = None) -> None:
        self.backend = backend
        self.broker = broker
        self.clock = clock or SystemClock()

    async def publish(self, message: Message) -> str:
        envelope = message_envelope(message, now=self.clock.now())
        if await self.broker.publish([envelope]):
            log.warning(
                "message %s on topic %r reached no queue: no handler is declared for it",
                envelope.message_id,
                envelope.routing_key,
            )
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
        _check_seconds(seconds)
        due = self.clock.now() + timedelta(seconds=seconds)
        return await self._enqueue(message, due, idempotency_key, payload_policy, time_policy)

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
        due = _as_utc(when, timezone)
        return await self._enqueue(message, due, idempotency_key, payload_policy, time_policy)

    async def delay_many(self, items: Iterable[tuple[Message, float]]) -> list[str]:
        """Enqueue many messages (no idempotency keys) in one backend round trip."""
        now = self.clock.now()
        entries = []
        for message, seconds in items:
            _check_seconds(seconds)
            due = now + timedelta(seconds=seconds)
            entries.append((message_envelope(message, now=now, due=due), due))
        await self.backend.enqueue_delayed_many(entries)
        return [envelope.message_id for envelope, _ in entries]

    async def _enqueue(
        self,
        message: Message,
        due: datetime,
        idempotency_key: str | None,
        payload_policy: str,
        time_policy: str,
    ) -> str:
        if payload_policy not in PAYLOAD_POLICIES:
            raise ConfigError(
                f"payload_policy must be one of {', '.join(PAYLOAD_POLICIES)}, "
                f"got {payload_policy!r}"
            )
        if time_policy not in TIME_POLICIES:
            raise ConfigError(
                f"time_policy must be one of {', '.join(TIME_POLICIES)}, got {time_policy!r}"
            )
        if idempotency_key is not None and (
            not isinstance(idempotency_key, str) or not idempotency_key
        ):
            raise ConfigError(
                f"idempotency_key must be a non-empty string, got {idempotency_key!r}"
            )
        envelope = message_envelope(message, now=self.clock.now(), due=due)
        await self.backend.enqueue_delayed(
            envelope,
            due,
            # Prefixed so that a user's key never meets the internal retry:/recheck: tasks.
            task_id=f"key:{idempotency_key}" if idempotency_key else envelope.message_id,
            payload_policy=payload_policy,  # type: ignore[arg-type]
            time_policy=time_policy,  # type: ignore[arg-type]
        )
        return envelope.message_id


def _check_seconds(seconds: object) -> None:
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or seconds < 0
    ):
        raise ConfigError(f"delay seconds must be a finite number >= 0, got {seconds!r}")


def _as_utc(when: datetime, timezone: tzinfo | str | None) -> datetime:
    if not isinstance(when, datetime):
        raise ConfigError(f"schedule() needs a datetime, got {when!r}")
    if when.tzinfo is not None and when.utcoffset() is not None:
        return when.astimezone(UTC)
    if isinstance(timezone, str):
        try:
            timezone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"unknown time zone {timezone!r}: use an IANA name such as 'Europe/Lisbon'"
            ) from None
    return when.replace(tzinfo=timezone or UTC).astimezone(UTC)


def use_publisher() -> Publisher:
    """The publisher bound to this context (inside actions and handlers, or ``connect()``)."""
    publisher = _current.get()
    if publisher is None:
        raise PublisherNotBoundError(
            "no publisher is bound here: wrap the code in "
            "`async with connect(broker_url=..., backend_url=...):` or call it from inside a "
            "scheduled action or message handler"
        )
    return publisher


@contextmanager
def bind_publisher(publisher: Publisher) -> Iterator[Publisher]:
    token = _current.set(publisher)
    try:
        yield publisher
    finally:
        _current.reset(token)


@asynccontextmanager
async def connect(
    broker_url: str = "memory://", backend_url: str = "memory://", *, clock: Clock | None = None
) -> AsyncIterator[Publisher]:
    """Connect to a broker and backend and bind a publisher for the block."""
    from jararaca.urls import make_backend, make_broker

    broker = make_broker(broker_url)
    backend = make_backend(backend_url, namespace=broker.namespace)
    await broker.connect()
    try:
        await broker.declare([])  # the exchange must exist before anything is published
        await backend.connect()
        try:
            with bind_publisher(Publisher(backend, broker, clock)) as publisher:
                yield publisher
        finally:
            await backend.close()
    finally:
        await broker.close()
