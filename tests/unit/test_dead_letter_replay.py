"""A dead letter replayed by an operator is handled again, although the worker remembers the
message as handled (its duplicate check would drop a plain copy)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jararaca import Message, MessageContext, MessageHandler, Microservice
from jararaca.testing import TestScheduler

T0 = datetime(2031, 5, 1, tzinfo=UTC)


class Job(Message):
    MESSAGE_TOPIC = "jobs.flaky"

    n: int


attempts: list[tuple[int, int]] = []
healthy = {"now": False}


class Jobs:
    @MessageHandler(Job)
    async def on_job(self, message: Job, context: MessageContext) -> None:
        attempts.append((message.n, context.attempt))
        if not healthy["now"]:
            raise RuntimeError("downstream is down")


async def test_a_replayed_dead_letter_runs_again_and_succeeds() -> None:
    attempts.clear()
    healthy["now"] = False
    async with TestScheduler(Microservice(controllers=[Jobs]), start=T0) as t:
        await Job(n=1).delay(1)
        await t.advance(timedelta(seconds=2))
        broker = t.scheduler.broker
        [letter] = await broker.dead_letters(limit=10)
        assert "downstream is down" in letter.reason
        healthy["now"] = True
        assert await broker.replay_dead_letters() == 1
        await t.advance(timedelta(seconds=1))
        assert await broker.dead_letters(limit=10) == []
    assert attempts == [(1, 1), (1, 1)]
