"""One message handler that records, for each message, its number, due instant and start.

Used by delayed-burst (lateness = handler start - ``MessageContext.due_at``) and by
worker-throughput (no due instant: ``due`` is 0).
"""

from __future__ import annotations

import time

from bench.recorder import RECORDER
from jararaca import Message, MessageContext, MessageHandler, Microservice


class BenchPing(Message):
    MESSAGE_TOPIC = "bench.ping"
    MESSAGE_TYPE = "task"

    n: int


class Pings:
    @MessageHandler(BenchPing)
    async def on_ping(self, message: BenchPing, context: MessageContext) -> None:
        started = time.time()
        due = context.due_at.timestamp() if context.due_at is not None else 0.0
        RECORDER.add(message.n, due, started)


app = Microservice(name="bench-burst", controllers=[Pings])
