"""jararaca: scheduled work for asyncio.

Cron-decorated actions on controller classes and messages delivered later, run embedded in one
process or distributed over Redis and RabbitMQ.
"""

from jararaca.client import connect
from jararaca.declarations import (
    MessageBusController,
    MessageContext,
    MessageHandler,
    ScheduledAction,
    ScheduledRun,
)
from jararaca.errors import (
    BackendError,
    BrokerError,
    ConfigError,
    CronError,
    JararacaError,
    PublisherNotBoundError,
)
from jararaca.messagebus.message import Message
from jararaca.messagebus.publisher import Publisher, use_publisher
from jararaca.microservice import Microservice, ProviderSpec
from jararaca.scheduler.beat_worker import BeatWorker, SchedulerV2
from jararaca.scheduler.scheduler import Scheduler
from jararaca.worker import Worker

__all__ = [
    "BackendError",
    "BeatWorker",
    "BrokerError",
    "ConfigError",
    "CronError",
    "JararacaError",
    "Message",
    "MessageBusController",
    "MessageContext",
    "MessageHandler",
    "Microservice",
    "ProviderSpec",
    "Publisher",
    "PublisherNotBoundError",
    "ScheduledAction",
    "ScheduledRun",
    "Scheduler",
    "SchedulerV2",
    "Worker",
    "connect",
    "use_publisher",
]
