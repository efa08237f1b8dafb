"""The control plane: see, steer and fix an app's schedules while they run.

``async with Control(app, backend_url=...) as control:`` then ``schedules()``, ``pause()``,
``trigger()``, ``backfill()``, ``runs()``, ``delayed()``, ``dead_letters()``, ``processes()``...
(DESIGN.md section 5). The ``jararaca schedules|runs|delayed|dead-letters|status`` commands are
a thin shell over it.
"""

from __future__ import annotations

from jararaca.control.control import Control
from jararaca.control.models import (
    DeadLetterInfo,
    DelayedInfo,
    ProcessInfo,
    RunInfo,
    ScheduleInfo,
)
from jararaca.control.views import MAX_BACKFILL, schedules_from_app

__all__ = [
    "MAX_BACKFILL",
    "Control",
    "DeadLetterInfo",
    "DelayedInfo",
    "ProcessInfo",
    "RunInfo",
    "ScheduleInfo",
    "schedules_from_app",
]
