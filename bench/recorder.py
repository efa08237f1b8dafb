"""What a bench app's handlers saw, recorded cheaply in the process that runs them.

A handler calls :meth:`Recorder.add` (three list appends). A daemon thread prints
``PROGRESS <count>`` when the count changed (at most every 0.2 s) so the scenario knows when
everything arrived, and at exit (the worker drains on SIGTERM and exits normally) the records
are written as JSON to the path in ``BENCH_OUT``. Nothing is parsed per message.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

PROGRESS_PERIOD = 0.2


class Recorder:
    def __init__(self) -> None:
        self.keys: list[str | int] = []
        self.due: list[float] = []  # epoch seconds the work was due (scheduled or due instant)
        self.start: list[float] = []  # epoch seconds the handler started
        self._out = os.environ.get("BENCH_OUT")
        self._thread: threading.Thread | None = None
        if self._out:
            atexit.register(self.write)

    def add(self, key: str | int, due: float, started: float) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._progress, daemon=True)
            self._thread.start()
        self.keys.append(key)
        self.due.append(due)
        self.start.append(started)

    def _progress(self) -> None:
        shown = -1
        while True:
            count = len(self.keys)
            if count != shown:
                # One write of the whole line: print() writes the text and its newline apart
                # (two syscalls under PYTHONUNBUFFERED), and the worker's log lines, sent to
                # the same pipe from its event loop, could land between the two.
                sys.stdout.write(f"PROGRESS {count}\n")
                sys.stdout.flush()
                shown = count
            time.sleep(PROGRESS_PERIOD)

    def write(self) -> None:
        if not self._out:
            return
        data: dict[str, Any] = {
            "pid": os.getpid(),
            "keys": self.keys,
            "due": self.due,
            "start": self.start,
        }
        Path(self._out).write_text(json.dumps(data), encoding="utf-8")


RECORDER = Recorder()
