"""What users write: ``@ScheduledAction``, ``@MessageHandler`` and what their methods receive.

Declarations are checked when the decorators run and never reach the engines (no backend,
broker or runtime import here): the registry reads them, the runtime acts on them.
"""

from jararaca.declarations.actions import ScheduledAction, ScheduledRun
from jararaca.declarations.handlers import MessageBusController, MessageContext, MessageHandler

__all__ = [
    "MessageBusController",
    "MessageContext",
    "MessageHandler",
    "ScheduledAction",
    "ScheduledRun",
]
