"""What a peer's task saw, as JSON lines (``{"key", "due", "start"}``) that survive any exit.

bench.recorder writes its records at exit, which a taskiq worker process never reaches (its
workers are multiprocessing children, which leave through ``os._exit``). Here each record is
an appended line, flushed by a daemon thread at most every 0.2 s, which then writes
``PROGRESS <count>`` of the records flushed so far: when the harness has seen the count it
waits for, those records are on disk. bench.stats.Records.load reads these files
(``.jsonl``) like bench.recorder's.

Standard library only: it runs in the peers' virtualenv.
"""

from __future__ import annotations

import json
import os
import threading
import time

PROGRESS_PERIOD = 0.2
READY_LINE = "PEER WORKER READY"  # written by a peer's worker when it consumes


class PeerRecorder:
    def __init__(self) -> None:
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._count = 0
        self._path = os.environ.get("BENCH_OUT", "")

    def add(self, key: str | int, due: float, started: float) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._flush_forever, daemon=True)
                self._thread.start()
            self._pending.append(json.dumps({"key": key, "due": due, "start": started}))

    def _flush_forever(self) -> None:
        shown = -1
        while True:
            with self._lock:
                lines, self._pending = self._pending, []
            if lines and self._path:
                with open(self._path, "a", encoding="utf-8") as out:
                    out.write("\n".join(lines) + "\n")
            self._count += len(lines)
            if self._count != shown:
                # Straight to file descriptor 1, in one write: Celery replaces sys.stdout with
                # a logger, whose prefix would hide the line from the harness.
                os.write(1, f"PROGRESS {self._count}\n".encode())
                shown = self._count
            time.sleep(PROGRESS_PERIOD)


RECORDER = PeerRecorder()


def print_enqueued(count: int, seconds: float) -> None:
    """The enqueue's one result line, as bench.enqueue prints jararaca's."""
    result = {
        "count": count,
        "seconds": seconds,
        "rate": count / seconds,
        "finished_at": time.time(),
    }
    print(json.dumps(result), flush=True)
