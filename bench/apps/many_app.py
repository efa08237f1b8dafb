"""An app of many scheduled actions, generated: ``make_app`` reads its size from the environment.

- ``BENCH_ACTIONS``: how many actions (default 1,000), spread over classes of 1,000 methods;
- ``BENCH_SHARED`` of them (default 0) share one slot, the daily 6-field cron ``BENCH_SLOT``
  (``"S M H"``, UTC); they record their runs for the lateness figure;
- the others fire daily at a minute of an hour other than the current one and the next
  (about 76 actions per distinct cron), so none fires during a run and the beat's idle cost
  is all that is measured.

Action ids are the default ``<module>.<class>.<method>``, unique by construction.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from bench.recorder import RECORDER
from jararaca import Microservice, ScheduledAction, ScheduledRun

PER_CLASS = 1_000

Action = Callable[[Any, ScheduledRun], Awaitable[None]]


def quiet_cron(index: int, hour_now: int) -> str:
    """A daily 5-field cron that fires neither in the current hour nor in the next."""
    hours = [h for h in range(24) if h not in (hour_now, (hour_now + 1) % 24)]
    return f"{index % 60} {hours[(index // 60) % len(hours)]} * * *"


def _method(qualname: str) -> Action:
    async def action(self: Any, run: ScheduledRun) -> None:
        RECORDER.add(run.fire_id, run.scheduled_at.timestamp(), time.time())

    action.__name__ = qualname.rsplit(".", 1)[1]
    action.__qualname__ = qualname
    action.__module__ = __name__
    return action


def make_app() -> Microservice:
    count = int(os.environ.get("BENCH_ACTIONS", "1000"))
    shared = int(os.environ.get("BENCH_SHARED", "0"))
    slot = os.environ.get("BENCH_SLOT", "0 0 0")
    hour_now = datetime.now(UTC).hour
    controllers: list[type[Any]] = []
    for first in range(0, count, PER_CLASS):
        class_name = f"Actions{first // PER_CLASS:04d}"
        members: dict[str, Any] = {"__module__": __name__, "__qualname__": class_name}
        for index in range(first, min(first + PER_CLASS, count)):
            cron = f"{slot} * * *" if index < shared else quiet_cron(index, hour_now)
            name = f"a{index:06d}"
            members[name] = ScheduledAction(cron)(_method(f"{class_name}.{name}"))
        controllers.append(type(class_name, (), members))
    return Microservice(name="bench-many", controllers=controllers)


if __name__ == "__main__":
    began = time.perf_counter()
    built = make_app()
    print(f"BUILT {len(built.controllers)} {time.perf_counter() - began:.3f}", flush=True)
