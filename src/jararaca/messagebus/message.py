"""``Message``: a pydantic model that knows its topic and can be published, delayed or scheduled.

The sending itself goes through the publisher bound to the current context
(:mod:`jararaca.messagebus.context`); turning a message into an envelope is the publisher's job.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Any, ClassVar, Literal

from pydantic import BaseModel

from jararaca.errors import ConfigError
from jararaca.messagebus.context import bound_sender
from jararaca.policies import PayloadPolicy, TimePolicy

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
        return await bound_sender().publish(self)

    async def delay(
        self,
        seconds: float,
        *,
        idempotency_key: str | None = None,
        payload_policy: PayloadPolicy = "ignore",
        time_policy: TimePolicy = "replace",
    ) -> str:
        """Deliver ``seconds`` from now; see the publisher for the idempotency policies."""
        return await bound_sender().delay(
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
        payload_policy: PayloadPolicy = "ignore",
        time_policy: TimePolicy = "replace",
    ) -> str:
        """Deliver at ``when`` (a naive ``when`` is read in ``tz``, UTC when None)."""
        return await bound_sender().schedule(
            self,
            when,
            tz,
            idempotency_key=idempotency_key,
            payload_policy=payload_policy,
            time_policy=time_policy,
        )
