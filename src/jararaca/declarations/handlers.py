"""``@MessageHandler`` (a method that receives a Message type), ``@MessageBusController`` and the
``MessageContext`` a handler may receive."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, overload

from jararaca.declarations._signatures import (
    check_name_and_group,
    positional_params,
    qualified_name,
)
from jararaca.errors import ConfigError
from jararaca.messagebus.message import Message

HANDLER_ATTR = "__jararaca_handler__"
CONTROLLER_ATTR = "__jararaca_message_bus_controller__"
F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type[Any])


@dataclass(frozen=True, slots=True)
class MessageContext:
    """What a handler may receive about the message it handles."""

    message_id: str
    topic: str
    published_at: datetime | None
    due_at: datetime | None
    attempt: int


class MessageHandler:
    """Handle every message of ``message_type`` published to the app's exchange.

    The method is ``async def on_x(self, message)`` or ``async def on_x(self, message, context)``
    (a ``MessageContext``). Each handler of a topic gets every message once; several workers
    share the load. ``retries`` re-delivers a failing message later (exponential backoff with
    jitter from ``retry_delay``, through the delayed queue); exhausted retries dead-letter it.
    """

    def __init__(
        self,
        message_type: type[Message],
        *,
        timeout: float | None = None,
        exception_handler: Callable[..., Any] | None = None,
        name: str | None = None,
        group: str | None = None,
        retries: int = 0,
        retry_delay: float = 1.0,
    ) -> None:
        where = f"@MessageHandler({getattr(message_type, '__qualname__', message_type)!r})"
        if not (inspect.isclass(message_type) and issubclass(message_type, Message)):
            raise ConfigError(f"{where}: the first argument must be a Message subclass")
        message_type.topic()  # raises a clear error when MESSAGE_TOPIC is missing
        if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
            raise ConfigError(
                f"{where}: timeout must be a positive number of seconds, got {timeout!r}"
            )
        if exception_handler is not None and not callable(exception_handler):
            raise ConfigError(f"{where}: exception_handler must be callable")
        check_name_and_group(where, name, group)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"{where}: retries must be an integer >= 0, got {retries!r}")
        if not isinstance(retry_delay, int | float) or retry_delay <= 0:
            raise ConfigError(f"{where}: retry_delay must be > 0 seconds, got {retry_delay!r}")
        self.message_type = message_type
        self.timeout = timeout
        self.exception_handler = exception_handler
        self.name = name
        self.group = group
        self.retries = retries
        self.retry_delay = float(retry_delay)
        self.function: Callable[..., Any] | None = None
        self.takes_context = False

    def __call__(self, func: F) -> F:
        params = positional_params(func, "MessageHandler")
        if len(params) not in (1, 2):
            raise ConfigError(
                f"@MessageHandler on {qualified_name(func)}: the method takes (self, message) "
                "or (self, message, context)"
            )
        self.function = func
        self.takes_context = len(params) == 2
        setattr(func, HANDLER_ATTR, self)
        return func

    @property
    def handler_id(self) -> str:
        if self.name is not None:
            return self.name
        if self.function is None:
            raise ConfigError("MessageHandler was created but never applied to a function")
        return qualified_name(self.function)


def get_message_handler(obj: object) -> MessageHandler | None:
    spec = getattr(obj, HANDLER_ATTR, None)
    return spec if isinstance(spec, MessageHandler) else None


@overload
def MessageBusController(cls: C, /) -> C: ...
@overload
def MessageBusController(cls: None = None, /) -> Callable[[C], C]: ...
def MessageBusController(cls: C | None = None, /) -> C | Callable[[C], C]:
    """Marks a controller class (optional: every controller is scanned anyway)."""

    def mark(target: C) -> C:
        setattr(target, CONTROLLER_ATTR, True)
        return target

    return mark if cls is None else mark(cls)
