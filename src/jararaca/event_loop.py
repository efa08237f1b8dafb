"""Which event loop a service process runs on (``JARARACA_EVENT_LOOP``).

uvloop runs the same asyncio code on libuv, with the loop, its transports and its timers in C.
A service process is mostly such machinery around the AMQP and Redis clients: on a 10,000
message burst through 1 beat and 1 worker sharing 2 cores, the drain went from 3,077-3,158 to
3,337-3,432 msg/s with uvloop (three alternating pairs, 2026-11-29; docs/benchmarks.md).
Code embedding a :class:`~jararaca.Scheduler` in its own loop (``serve()``) keeps its loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from jararaca.errors import ConfigError
from jararaca.settings import event_loop_choice

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory() -> LoopFactory | None:
    """The factory of the loop ``run()`` creates; None for asyncio's own."""
    choice = event_loop_choice()
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ConfigError(
                "JARARACA_EVENT_LOOP=uvloop but uvloop is not installed: "
                "pip install 'jararaca[uvloop]', or unset JARARACA_EVENT_LOOP"
            ) from None
        return None
    return uvloop.new_event_loop
