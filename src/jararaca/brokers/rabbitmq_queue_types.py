"""Queue types on RabbitMQ (``?queue_type=classic|quorum`` of the broker URL): the arguments
each kind of queue is declared with, and the error for a queue that exists with others.

A quorum queue is replicated over the nodes of a RabbitMQ cluster (Raft), so it survives the
loss of a minority of them; it also counts deliveries, and a message handed out more than its
``x-delivery-limit`` times (one that keeps killing or stalling workers) is dead-lettered
instead of circling for ever. A classic queue lives on one node. RabbitMQ cannot change the
type or the arguments of an existing queue: declaring it with others is refused
(PRECONDITION_FAILED), which :func:`inequivalent_queue` turns into a :class:`ConfigError` that
says what exists, what was asked, and what to do.
"""

from __future__ import annotations

import re
from typing import Any

from aiormq.exceptions import ChannelPreconditionFailed

from jararaca.errors import BrokerError, ConfigError, JararacaError

QUORUM = "quorum"

# RabbitMQ's words, e.g. "inequivalent arg 'x-queue-type' for queue 'app.q' in vhost '/':
# received the value 'quorum' of type 'longstr' but current is none".
_INEQUIVALENT = re.compile(
    r"inequivalent arg '(?P<arg>[^']+)' for queue '(?P<queue>[^']*)' in vhost '[^']*': "
    r"received (?P<asked>.+?) but current is (?P<current>.+?)\s*$"
)
_VALUE = re.compile(r"^(?:the value )?'?(?P<value>[^']*)'?(?: of type '[^']*')?$")


def work_queue_arguments(queue_type: str, delivery_limit: int) -> dict[str, Any]:
    """Type arguments of the queues workers consume (handler, action and unrouted queues)."""
    if queue_type != QUORUM:
        return {}
    return {"x-queue-type": QUORUM, "x-delivery-limit": delivery_limit}


def dead_letter_queue_arguments(queue_type: str) -> dict[str, Any]:
    """Type arguments of the dead-letter queue: quorum too (poison is evidence worth
    replicating), but with no delivery limit of ours. Looking at dead letters takes them and
    hands them back, which a quorum queue counts as deliveries; RabbitMQ 3.x then never drops
    them (no limit set), RabbitMQ 4.x applies its default limit of 20."""
    return {"x-queue-type": QUORUM} if queue_type == QUORUM else {}


def _value(text: str) -> str:
    text = text.strip()
    if text == "none":
        return "not set"
    match = _VALUE.match(text)
    return match.group("value") if match else text


def inequivalent_queue(
    queue: str, exc: ChannelPreconditionFailed, asked: dict[str, Any]
) -> ConfigError | None:
    """The error for a queue RabbitMQ refused to declare because it exists with another type
    or delivery limit; None when the refusal is about something else."""
    match = _INEQUIVALENT.search(str(exc))
    if match is None or match.group("arg") not in ("x-queue-type", "x-delivery-limit"):
        return None
    arg = match.group("arg")
    current, wanted = _value(match.group("current")), _value(match.group("asked"))
    if arg == "x-queue-type":
        exists = f"a {current if current != 'not set' else 'classic'} queue"
        asked_for = f"{wanted} (?queue_type={wanted} in the broker URL)"
        old_setting = "?queue_type=" + (current if current != "not set" else "classic")
    else:
        exists = f"x-delivery-limit={current}"
        asked_for = f"x-delivery-limit={wanted} (?delivery_limit= in the broker URL)"
        old_setting = f"?delivery_limit={current}" if current.isdigit() else "its old setting"
    declared = ", ".join(f"{k}={v}" for k, v in sorted(asked.items())) or "no type arguments"
    return ConfigError(
        f"RabbitMQ refused to declare the queue {queue}: it exists as {exists}, and this app "
        f"asked for {asked_for}; jararaca declares it with {declared}. RabbitMQ cannot change "
        "the type or arguments of an existing queue. Either delete the queue (rabbitmqctl "
        f"delete_queue {queue}, after moving out the messages you need, e.g. with a shovel) "
        f"and start again so that it is declared with the new setting, or keep {old_setting} "
        "in the broker URL"
    )


def queue_refused(
    queue: str, exc: ChannelPreconditionFailed, asked: dict[str, Any]
) -> JararacaError:
    """The error for a work queue RabbitMQ refused to declare."""
    return inequivalent_queue(queue, exc, asked) or BrokerError(
        f"RabbitMQ refused to declare queue {queue}: {exc}. It already exists with other "
        "settings (type, durability or arguments): delete it, or use another exchange= name"
    )


def dead_letter_refused(
    queue: str, exc: ChannelPreconditionFailed, asked: dict[str, Any], dead_letter_max: int
) -> JararacaError:
    """The error for a dead-letter queue RabbitMQ refused to declare (typically declared
    before it was bounded, or with another type)."""
    return inequivalent_queue(queue, exc, asked) or BrokerError(
        f"RabbitMQ refused to declare the dead-letter queue {queue}: it exists with other "
        f"arguments ({exc}). jararaca declares it with x-max-length={dead_letter_max} "
        "(JARARACA_DEAD_LETTER_MAX) and x-overflow=drop-head, and RabbitMQ cannot change the "
        "arguments of an existing queue (a policy does not help: RabbitMQ compares the "
        f"declared arguments). Delete the queue (rabbitmqctl delete_queue {queue}; move its "
        "messages elsewhere first, e.g. with a shovel, if you need them) and jararaca declares "
        "it again; if only its x-max-length differs, setting JARARACA_DEAD_LETTER_MAX to that "
        "value works too"
    )
