"""Which ack frames the ack batcher writes: one ``multiple`` ack for the settled run at the front
of a channel's deliveries, a single ack for each one behind a delivery still in progress, and
never a ``multiple`` ack over a delivery that was not acked. (What RabbitMQ makes of them is
in tests/integration/test_rabbitmq_broker.py.)"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from aiormq.abc import AbstractChannel

from jararaca.brokers.rabbitmq_acks import AckBatcher


class WrittenAcks:
    """Stands in for an aiormq channel: records the ack frames written to it."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.frames: list[tuple[int, bool]] = []
        self.some_written = asyncio.Event()
        self._fail = fail

    async def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        if self._fail is not None:
            raise self._fail
        # As aiormq: the frame is queued for writing at once, then the call waits a while
        # for the write to drain (other tasks run meanwhile).
        self.frames.append((delivery_tag, multiple))
        self.some_written.set()
        for _ in range(10):
            await asyncio.sleep(0)


def channel(written: WrittenAcks) -> AbstractChannel:
    return cast(AbstractChannel, written)


async def ack_together(batcher: AckBatcher, target: AbstractChannel, *tags: int) -> None:
    await asyncio.gather(*(batcher.ack(target, tag) for tag in tags))


async def test_acks_of_one_loop_turn_go_out_as_one_multiple_ack() -> None:
    written = WrittenAcks()
    batcher = AckBatcher()
    for tag in range(1, 6):
        batcher.delivered(channel(written), tag)
    await ack_together(batcher, channel(written), 3, 1, 2)
    assert written.frames == [(3, True)]
    await ack_together(batcher, channel(written), 4)
    assert written.frames == [(3, True), (4, False)]  # alone: no need for the flag


async def test_acks_behind_a_delivery_in_progress_go_out_one_by_one() -> None:
    written = WrittenAcks()
    batcher = AckBatcher()
    for tag in range(1, 6):
        batcher.delivered(channel(written), tag)
    await ack_together(batcher, channel(written), 2, 3, 5)  # 1 and 4 still run
    assert sorted(written.frames) == [(2, False), (3, False), (5, False)]
    await ack_together(batcher, channel(written), 1, 4)
    # 2, 3 and 5 left the order when they were sent: 1 and 4 are now a run at the front.
    assert written.frames[3:] == [(4, True)]


async def test_a_requeued_delivery_leaves_the_order_and_is_never_acked() -> None:
    written = WrittenAcks()
    batcher = AckBatcher()
    for tag in range(1, 5):
        batcher.delivered(channel(written), tag)
    batcher.forget(channel(written), 2)  # requeued: its nack went out on its own
    await ack_together(batcher, channel(written), 1, 3)
    # RabbitMQ no longer holds 2 for us, so a multiple ack up to 3 covers 1 and 3 only.
    assert written.frames == [(3, True)]
    await ack_together(batcher, channel(written), 4)
    assert written.frames == [(3, True), (4, False)]


async def test_each_channel_has_its_own_order() -> None:
    old, new = WrittenAcks(), WrittenAcks()
    batcher = AckBatcher()
    batcher.delivered(channel(old), 1)
    batcher.delivered(channel(old), 2)
    batcher.delivered(channel(new), 1)  # after a reconnection tags start again
    await ack_together(batcher, channel(new), 1)
    await ack_together(batcher, channel(old), 2)
    assert new.frames == [(1, False)]
    assert old.frames == [(2, False)]


async def test_a_later_turns_multiple_ack_waits_for_an_earlier_turns_single_acks() -> None:
    written = WrittenAcks()
    batcher = AckBatcher()
    for tag in range(1, 9):
        batcher.delivered(channel(written), tag)
    first_turn = asyncio.gather(*(batcher.ack(channel(written), tag) for tag in (1, 2, 7)))
    await written.some_written.wait()  # the first turn's writes have begun
    await ack_together(batcher, channel(written), 3, 4, 5, 6, 8)
    await first_turn
    # Had (8, multiple) gone before (7, single), RabbitMQ would have acked 7 with it and then
    # closed the channel on the second ack of 7 (unknown delivery tag).
    assert written.frames == [(2, True), (7, False), (8, True)]


async def test_an_untracked_delivery_is_acked_on_its_own() -> None:
    written = WrittenAcks()
    await AckBatcher().ack(channel(written), 7)
    assert written.frames == [(7, False)]


async def test_every_ack_of_a_failed_write_sees_the_failure() -> None:
    failing: Any = WrittenAcks(fail=ConnectionError("channel closed"))
    batcher = AckBatcher()
    for tag in (1, 2):
        batcher.delivered(channel(failing), tag)
    outcomes = await asyncio.gather(
        batcher.ack(channel(failing), 1), batcher.ack(channel(failing), 2), return_exceptions=True
    )
    assert all(isinstance(o, ConnectionError) for o in outcomes)


@pytest.mark.parametrize("count", [1, 32])
async def test_a_front_run_of_any_length_leaves_nothing_behind(count: int) -> None:
    written = WrittenAcks()
    batcher = AckBatcher()
    for tag in range(1, count + 1):
        batcher.delivered(channel(written), tag)
    await ack_together(batcher, channel(written), *range(1, count + 1))
    assert written.frames == [(count, count > 1)]
