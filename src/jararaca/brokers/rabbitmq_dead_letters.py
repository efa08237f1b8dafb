"""The dead-letter queue on RabbitMQ (:mod:`jararaca.brokers.rabbitmq`): look, replay, purge.

Each operation opens a channel of its own and closes it when done. Messages are taken with
``basic.get`` and not auto-acked: closing the channel hands every one not acked back to
RabbitMQ, which puts it back in its place, so a look removes nothing and the queue stays
oldest first. A replay acks a dead letter only once RabbitMQ confirmed its copy (published on
the broker's confirm-mode channel): should the process die in between, the dead letter is
still there (and, at worst, also replayed).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection, AbstractRobustQueue
from aiormq.exceptions import ChannelPreconditionFailed

from jararaca.brokers.base import DeadLetter
from jararaca.brokers.dead_letters import replay_envelope
from jararaca.brokers.rabbitmq_consume import quietly
from jararaca.brokers.rabbitmq_messages import dead_letter_from_message
from jararaca.brokers.rabbitmq_publish import ConfirmedPublisher
from jararaca.brokers.rabbitmq_topology import AMQP_FAILURES, TopologyNames
from jararaca.errors import BrokerError

# Dead letters taken before their copies are published together: their confirms are awaited
# at once (one round trip per batch, not per message), and a batch is what a failure leaves
# unacked.
REPLAY_BATCH = 256


async def peek(
    connection: AbstractRobustConnection, names: TopologyNames, limit: int
) -> list[DeadLetter]:
    letters: list[DeadLetter] = []
    async with _dead_letter_queue(connection, names, "read the dead-letter queue") as queue:
        while len(letters) < limit:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            letters.append(dead_letter_from_message(message))
    return letters


async def replay(
    connection: AbstractRobustConnection,
    names: TopologyNames,
    publisher: ConfirmedPublisher,
    message_ids: Sequence[str] | None,
) -> int:
    wanted = None if message_ids is None else set(message_ids)
    if wanted is not None and not wanted:
        return 0
    replayed = 0
    async with _dead_letter_queue(connection, names, "replay the dead-letter queue") as queue:
        # Only the dead letters there now: one replayed and dead-lettered again meanwhile (no
        # handler for its topic, say) must not go round again in this replay.
        left = queue.declaration_result.message_count or 0
        while left > 0:
            batch: list[tuple[AbstractIncomingMessage, DeadLetter]] = []
            while left > 0 and len(batch) < REPLAY_BATCH:
                message = await queue.get(no_ack=False, fail=False)
                if message is None:
                    left = 0
                    break
                left -= 1
                letter = dead_letter_from_message(message)
                if wanted is None or letter.envelope.message_id in wanted:
                    batch.append((message, letter))
                # Any other stays unacked until the channel closes, which puts it back.
            confirmed = await publisher.publish_each(
                [replay_envelope(letter) for _, letter in batch]
            )
            for (message, _), ok in zip(batch, confirmed, strict=True):
                if ok:
                    await message.ack()
            replayed += sum(confirmed)
            failed = [letter for (_, letter), ok in zip(batch, confirmed, strict=True) if not ok]
            if failed:
                raise BrokerError(
                    f"replayed {replayed} dead letter(s), but RabbitMQ did not confirm the "
                    f"copies of {len(failed)} (first: {failed[0].envelope.message_id}), which "
                    "stay in the dead-letter queue (a copy may have been delivered all the "
                    "same): replay them again"
                )
    return replayed


async def purge(connection: AbstractRobustConnection, names: TopologyNames) -> int:
    async with _dead_letter_queue(connection, names, "purge the dead-letter queue") as queue:
        result = await queue.purge()
    return result.message_count or 0


@contextlib.asynccontextmanager
async def _dead_letter_queue(
    connection: AbstractRobustConnection, names: TopologyNames, what: str
) -> AsyncIterator[AbstractRobustQueue]:
    """The dead-letter queue on a fresh channel, closed on the way out (which gives back
    every message taken and not acked)."""
    try:
        # Only gets and acks on this channel: it needs no publisher confirms.
        channel = await connection.channel(publisher_confirms=False)
    except AMQP_FAILURES as exc:
        raise BrokerError(f"could not open a channel on RabbitMQ to {what}: {exc!r}") from None
    try:
        try:
            # Declared (not only looked up) with its arguments: it is there even if someone
            # deleted it, and its message count says how many a replay takes.
            queue = await channel.declare_queue(
                names.dead_letter_queue, durable=True, arguments=names.dead_letter_arguments()
            )
        except ChannelPreconditionFailed as exc:
            raise names.dead_letter_refused(exc) from None
        yield queue
    except AMQP_FAILURES as exc:
        raise BrokerError(
            f"could not {what} on RabbitMQ: {exc!r}; the dead letters not yet replayed or "
            "purged stay in it"
        ) from None
    finally:
        await quietly(channel.close())
