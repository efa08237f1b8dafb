"""An app of many scheduled actions, generated: ``make_app`` reads its size from the environment.

- ``BENCH_ACTIONS``: how many actions (default 1,000), spread over classes of 1,000 methods;
- ``BENCH_SHARED`` of them (default 0) share one slot, the daily 6-field cron ``BENCH_SLOT``
  (``"S M H"``, UTC); they record their runs for the lateness figure;
- the others fire daily at a minute of an hour other than the current one and the next
  (about 76 actions per distinct cron), so none fires during a run and the beat's idle cost
  is all that is measured;
- with ``BENCH_DISTINCT=1`` every one of those has a cron of its own (``distinct_cron``): a
  6-field cron at a second of the day outside those two hours (79,200 such seconds), every
  day, then on weekdays only, then at weekends, ... for counts beyond that: the beat parses
  and plans every expression, no two actions share one.

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


DAYS = ("*", "1-5", "0,6", "1", "2", "3", "4", "5", "6", "0")  # day-of-week variants


def _quiet_hours(hour_now: int) -> list[int]:
    return [h for h in range(24) if h not in (hour_now, (hour_now + 1) % 24)]


def quiet_cron(index: int, hours: list[int]) -> str:
    """A daily 5-field cron that fires in none but the quiet ``hours``."""
    return f"{index % 60} {hours[(index // 60) % len(hours)]} * * *"


def distinct_cron(index: int, hours: list[int]) -> str:
    """A 6-field cron of its own for each index (up to 792,000 with 22 quiet ``hours``),
    firing in none but those hours."""
    day, second = divmod(index, 60 * 60 * len(hours))
    if day >= len(DAYS):
        raise ValueError(f"no distinct quiet cron for action {index}")
    hour = hours[second // 3600]
    return f"{second % 60} {(second // 60) % 60} {hour} * * {DAYS[day]}"


def crons(count: int, shared: int, slot: str, hour_now: int, distinct: bool) -> list[str]:
    """The cron of each action, in order."""
    quiet = distinct_cron if distinct else quiet_cron
    hours = _quiet_hours(hour_now)  # once: the app's build time is part of the start-up figure
    return [f"{slot} * * *" if i < shared else quiet(i, hours) for i in range(count)]


def _method(qualname: str) -> Action:
    async def action(self: Any, run: ScheduledRun) -> None:
        RECORDER.add(run.fire_id, run.scheduled_at.timestamp(), time.time())

    action.__name__ = qualname.rsplit(".", 1)[1]
    action.__qualname__ = qualname
    action.__module__ = __name__
    return action


def env_crons() -> list[str]:
    """The crons of the app the environment describes (see the module's docstring)."""
    return crons(
        int(os.environ.get("BENCH_ACTIONS", "1000")),
        int(os.environ.get("BENCH_SHARED", "0")),
        os.environ.get("BENCH_SLOT", "0 0 0"),
        datetime.now(UTC).hour,
        os.environ.get("BENCH_DISTINCT", "0") == "1",
    )


def make_app() -> Microservice:
    every = env_crons()
    controllers: list[type[Any]] = []
    for first in range(0, len(every), PER_CLASS):
        class_name = f"Actions{first // PER_CLASS:04d}"
        members: dict[str, Any] = {"__module__": __name__, "__qualname__": class_name}
        for index in range(first, min(first + PER_CLASS, len(every))):
            name = f"a{index:06d}"
            members[name] = ScheduledAction(every[index])(_method(f"{class_name}.{name}"))
        controllers.append(type(class_name, (), members))
    return Microservice(name="bench-many", controllers=controllers)


if __name__ == "__main__":
    # BUILT <classes> <seconds to build> <distinct crons> (counted apart, not timed)
    began = time.perf_counter()
    built = make_app()
    seconds = time.perf_counter() - began
    distinct = len(set(env_crons()))
    print(f"BUILT {len(built.controllers)} {seconds:.3f} {distinct}", flush=True)
