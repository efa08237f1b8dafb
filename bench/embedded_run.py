"""The embedded ``Scheduler`` (``memory://``) in this process, for the embedded scenario.

    python -m bench.embedded_run cron SECONDS       # bench.apps.cron_app for SECONDS
    python -m bench.embedded_run burst COUNT FORM   # COUNT BenchPing due at one instant

The scheduler serves as under ``jararaca scheduler`` (``own_process=True``), on the event loop
that command would pick (``JARARACA_EVENT_LOOP``: uvloop when installed).
``cron`` prints ``READY <epoch>`` once serving and ``STOP <epoch>`` when told to stop.
``burst`` enqueues through ``connect("memory://")`` (the same in-process store), waits until
the handler saw every message, and prints one JSON line (enqueue rate, due instant, RSS).
The handlers' records are written to ``BENCH_OUT`` at exit (bench.recorder).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

from bench.apps import burst_app, cron_app
from bench.enqueue import FORMS
from bench.procstat import memory_kib
from bench.recorder import RECORDER
from jararaca import Scheduler, connect
from jararaca.event_loop import loop_factory

LEAD_RATE = 20_000  # assumed enqueue rate (msg/s), to pick a due instant after the enqueue


async def cron(seconds: float) -> None:
    stop = asyncio.Event()
    serving = asyncio.create_task(Scheduler(cron_app.app).serve(stop, own_process=True))
    await asyncio.sleep(0.5)
    print(f"READY {time.time()}", flush=True)
    await asyncio.sleep(seconds)
    print(f"STOP {time.time()}", flush=True)
    stop.set()
    await serving


async def burst(count: int, form: str) -> None:
    stop = asyncio.Event()
    serving = asyncio.create_task(Scheduler(burst_app.app).serve(stop, own_process=True))
    await asyncio.sleep(0.5)
    due = time.time() + 2 + count / LEAD_RATE
    async with connect("memory://", "memory://") as publisher:
        began = time.perf_counter()
        await FORMS[form](publisher, count, due)
        seconds = time.perf_counter() - began
        finished_at = time.time()
        # Polled at 20 Hz: negligible beside the drain, and the handler stays a bare append.
        while len(RECORDER.keys) < count and time.time() < due + 600:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    stop.set()
    await serving
    result = {
        "count": count,
        "seconds": seconds,
        "rate": count / seconds,
        "finished_at": finished_at,
        "due": due,
        "rss_peak_mib": memory_kib(os.getpid())["VmHWM"] / 1024,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        if sys.argv[1] == "cron":
            runner.run(cron(float(sys.argv[2])))
        else:
            runner.run(burst(int(sys.argv[2]), sys.argv[3]))
