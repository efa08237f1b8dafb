"""Acknowledge the deliveries a consumer settled in one event-loop turn with one basic.ack.

Each ack is a frame, and each frame a socket write: on a busy worker those writes cost more
than anything else it does per message. RabbitMQ's ``multiple`` flag acks every unacked
delivery of a channel up to and including a tag, so acks that arrive in the same loop turn go
out together: one ``basic.ack(multiple=True)`` for the longest run of acked deliveries at the
front of the channel's delivery order, and a single ack for each acked delivery behind one
still in progress (holding those back would keep them in the prefetch window for as long as
the slow one runs).

A ``multiple`` ack covers every unacked tag below it, so a tag goes out only when every
delivery before it on that channel was settled: acked here, or rejected or requeued (those go
out at once, one by one, and leave this order first). Tags belong to one AMQP channel: after a
reconnection the new channel starts its own order, and acks for the old one fail as a single
ack would (RabbitMQ already took those deliveries back).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass

from aiormq.abc import AbstractChannel

# Per channel: delivery tag -> whether the delivery was acked and waits to be sent.
_Order = OrderedDict[int, bool]


class AckBatcher:
    def __init__(self) -> None:
        self._channels: dict[AbstractChannel, _Order] = {}
        self._waiting: dict[AbstractChannel, list[asyncio.Future[None]]] = {}
        self._sending: set[asyncio.Task[None]] = set()
        # One writer at a time per channel, in the order of the loop turns: a later turn's
        # ``multiple`` ack must not overtake an earlier turn's single acks below it.
        self._writers: dict[AbstractChannel, tuple[asyncio.Lock, list[int]]] = {}

    def delivered(self, channel: AbstractChannel, tag: int) -> None:
        self._channels.setdefault(channel, OrderedDict())[tag] = False

    def forget(self, channel: AbstractChannel, tag: int) -> None:
        """The delivery is settled some other way (rejected, requeued) and leaves the order."""
        order = self._channels.get(channel)
        if order is not None:
            order.pop(tag, None)

    async def ack(self, channel: AbstractChannel, tag: int) -> None:
        """Ack ``tag`` with the other acks of this loop turn; return once it was written (or
        raise what writing it raised)."""
        order = self._channels.get(channel)
        if order is None or tag not in order:  # not tracked: ack it on its own
            await channel.basic_ack(tag)
            return
        order[tag] = True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._flush)
        self._waiting.setdefault(channel, []).append(waiter)
        await waiter

    def _flush(self) -> None:
        waiting, self._waiting = self._waiting, {}
        loop = asyncio.get_running_loop()
        for channel, waiters in waiting.items():
            order = self._channels.get(channel, _Order())
            front = _pop_front(order)
            behind = [tag for tag, acked in order.items() if acked]
            for tag in behind:
                del order[tag]
            if not order:
                self._channels.pop(channel, None)
            writer, queued = self._writers.setdefault(channel, (asyncio.Lock(), [0]))
            queued[0] += 1
            turn = _Turn(channel, front, behind, waiters)
            task = loop.create_task(self._send(writer, turn))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, writer: asyncio.Lock, turn: _Turn) -> None:
        try:
            async with writer:
                await turn.write()
        finally:
            queued = self._writers[turn.channel][1]
            queued[0] -= 1
            if queued[0] == 0:
                del self._writers[turn.channel]  # nothing more to write on it for now


@dataclass(frozen=True, slots=True)
class _Turn:
    """What one loop turn acks on one channel, and who waits for it to be written."""

    channel: AbstractChannel
    front: tuple[int, int] | None  # the front run: its last tag and its length
    behind: list[int]  # acked behind a delivery still in progress: one by one
    waiters: list[asyncio.Future[None]]

    async def write(self) -> None:
        try:
            if self.front is not None:
                last, count = self.front
                await self.channel.basic_ack(last, multiple=count > 1)
            for tag in self.behind:
                await self.channel.basic_ack(tag)
        except asyncio.CancelledError:
            for waiter in self.waiters:
                waiter.cancel()
            raise
        except Exception as exc:
            for waiter in self.waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            return
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)


def _pop_front(order: _Order) -> tuple[int, int] | None:
    """Remove the run of acked tags at the front of ``order``: (its last tag, its length)."""
    last, count = None, 0
    while order:
        tag, acked = next(iter(order.items()))
        if not acked:
            break
        order.popitem(last=False)
        last, count = tag, count + 1
    return None if last is None else (last, count)
