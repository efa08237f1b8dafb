"""Seconds crons whose runs record (fire id, scheduled instant, start) for cron-precision."""

from __future__ import annotations

import time

from bench.recorder import RECORDER
from jararaca import Microservice, ScheduledAction, ScheduledRun

CRONS = {"every_second": "* * * * * *", "every_2s": "*/2 * * * * *", "every_5s": "*/5 * * * * *"}


def _record(run: ScheduledRun) -> None:
    RECORDER.add(run.fire_id, run.scheduled_at.timestamp(), time.time())


class Seconds:
    @ScheduledAction(CRONS["every_second"], name="every_second")
    async def every_second(self, run: ScheduledRun) -> None:
        _record(run)

    @ScheduledAction(CRONS["every_2s"], name="every_2s")
    async def every_2s(self, run: ScheduledRun) -> None:
        _record(run)

    @ScheduledAction(CRONS["every_5s"], name="every_5s")
    async def every_5s(self, run: ScheduledRun) -> None:
        _record(run)


app = Microservice(name="bench-cron", controllers=[Seconds])
