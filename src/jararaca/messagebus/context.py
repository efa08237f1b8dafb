"""The publisher bound to the current context, as ``Message.publish``/``delay``/``schedule`` see it.

A leaf of the message bus: ``message.py`` asks this module for the bound sender, and
``publisher.py`` (which builds envelopes from messages) binds one. The sender is described by a
protocol here so that neither of those two modules has to import the other's runtime half.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, tzinfo
from typing import Any, Protocol

from jararaca.errors import PublisherNotBoundError
from jararaca.policies import PayloadPolicy, TimePolicy


class Sender(Protocol):
    """What a bound publisher offers to a message (``Publisher`` implements it)."""

    async def publish(self, message: Any, /) -> str: ...

    async def delay(
        self,
        message: Any,
        seconds: float,
        /,
        *,
        idempotency_key: str | None = None,
        payload_policy: PayloadPolicy = "ignore",
        time_policy: TimePolicy = "replace",
    ) -> str: ...

    async def schedule(
        self,
        message: Any,
        when: datetime,
        timezone: tzinfo | str | None = None,
        /,
        *,
        idempotency_key: str | None = None,
        payload_policy: PayloadPolicy = "ignore",
        time_policy: TimePolicy = "replace",
    ) -> str: ...


_current: ContextVar[Sender | None] = ContextVar("jararaca_publisher", default=None)


def bound_sender() -> Sender:
    """The sender bound to this context; a clear error names the fix when there is none."""
    sender = _current.get()
    if sender is None:
        raise PublisherNotBoundError(
            "no publisher is bound here: wrap the code in "
            "`async with connect(broker_url=..., backend_url=...):` or call it from inside a "
            "scheduled action or message handler"
        )
    return sender


def bind_sender_in_task(sender: Sender) -> None:
    """Bind ``sender`` for the rest of the current task. A task runs in a copy of its
    creator's context, so the binding ends with the task and nothing needs undoing (which
    spares a handled message two context managers)."""
    _current.set(sender)


@contextmanager
def bind_sender(sender: Sender) -> Iterator[None]:
    """Bind ``sender`` for the code run inside the block (and the tasks it creates)."""
    token = _current.set(sender)
    try:
        yield
    finally:
        _current.reset(token)
