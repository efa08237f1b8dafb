"""``Message``: a pydantic model that knows its topic and can be published, delayed or scheduled."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, ClassVar, Literal

from pydantic import BaseModel

from jararaca import wire
from jararaca.errors import ConfigError
from jararaca.settings import max_message_bytes

MessageType = Literal["task", "event"]
_TOPIC = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


class Message(BaseModel):
    """Subclass with ``MESSAGE_TOPIC`` (the routing key) and ``MESSAGE_TYPE`` and fields."""

    MESSAGE_TOPIC: ClassVar[str]
    MESSAGE_TYPE: ClassVar[MessageType] = "task"

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        topic = cls.__dict__.get("MESSAGE_TOPIC")
        if topic is not None and (not isinstance(topic, str) or not _TOPIC.match(topic)):
            raise ConfigError(
                f"{cls.__qualname__}.MESSAGE_TOPIC = {topic!r} is not a valid topic: use dot-"
                "separated words of letters, digits, '_' or '-' (no '*' or '#'), "
                "e.g. 'reminder.due'"
            )
        kind = cls.__dict__.get("MESSAGE_TYPE")
        if kind is not None and kind not in ("task", "event"):
            raise ConfigError(f"{cls.__qualname__}.MESSAGE_TYPE = {kind!r}: use 'task' or 'event'")

    @classmethod
    def topic(cls) -> str:
        topic = getattr(cls, "MESSAGE_TOPIC", None)
        if not isinstance(topic, str):
            raise ConfigError(
                f"{cls.__qualname__} has no MESSAGE_TOPIC: set it, "
                "e.g. MESSAGE_TOPIC = 'orders.created'"
            )
        return topic

    async def publish(self) -> str:
        """Publish now through the bound publisher; returns the message id."""
        from jararaca.messagebus.publisher import use_publisher

        return await use_publisher().publish(self)

    async def delay(
        self,
        seconds: float,
        *,
        idempotency_key: str | None = None,
        payload_policy: Literal["ignore", "replace"] = "ignore",
        time_policy: Literal["replace", "greater", "lesser"] = "replace",
    ) -> str:
        """Deliver ``seconds`` from now; see the publisher for the idempotency policies."""
        from jararaca.messagebus.publisher import use_publisher

        return await use_publisher().delay(
            self,
            seconds,
            idempotency_key=idempotency_key,
            payload_policy=payload_policy,
            time_policy=time_policy,
        )

    async def schedule(
        self,
        when: datetime,
        tz: tzinfo | str | None = None,
        *,
        idempotency_key: str | None = None,
        payload_policy: Literal["ignore", "replace"] = "ignore",
        time_policy: Literal["replace", "greater", "lesser"] = "replace",
    ) -> str:
        """Deliver at ``when`` (a naive ``when`` is read in ``tz``, UTC when None)."""
        from jararaca.messagebus.publisher import use_publisher

        return await use_publisher().schedule(
            self,
            when,
            tz,
            idempotency_key=idempotency_key,
            payload_policy=payload_policy,
            time_policy=time_policy,
        )


@dataclass(frozen=True, slots=True)
class MessageContext:
    """What a handler may receive about the message it handles."""

    message_id: str
    topic: str
    published_at: datetime | None
    due_at: datetime | None
    attempt: int


def message_envelope(
    message: Message, *, now: datetime, due: datetime | None = None
) -> wire.Envelope:
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
    limit = max_message_bytes()
    if len(body) > limit:
        raise ConfigError(
            f"{type(message).__qualname__} is {len(body):,} bytes of JSON, over the "
            f"{limit:,}-byte limit: send a reference (an id, a URL) instead of the data, or "
            "raise JARARACA_MAX_MESSAGE_BYTES"
        )
    return wire.Envelope(message_id=uuid.uuid4().hex, routing_key=topic, body=body, headers=headers)
