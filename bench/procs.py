"""Child processes of a scenario (``jararaca beat``/``worker``, bench clients), bounded in time.

Each child's stdout and stderr are read line by line by a thread; scenarios wait for a line
(a readiness marker, a progress count) and stop children by pid: SIGTERM (the jararaca
processes drain and exit 0), then SIGKILL if one outlives its grace.
"""

from __future__ import annotations

import codecs
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.config import ROOT

BEAT_READY = "beat started"
PROGRESS_LINE = re.compile(r"PROGRESS (\d+)")
WORKER_READY = "consuming"


class BenchError(RuntimeError):
    """A scenario could not run (a child failed or timed out); its figures are missing."""


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[str]
    started: float  # time.time() at spawn
    lines: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # time.time() each line arrived
    _seen: threading.Condition = field(default_factory=threading.Condition)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def pump(self) -> None:
        """Read the output in chunks, not line by line: a worker logs a line per message, and
        a thread waking up for each of 4,000 lines a second took a share of this 2-core
        machine from the processes measured (the ceiling's clients print nothing)."""
        assert self.popen.stdout is not None
        fd = self.popen.stdout.fileno()
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        partial = ""
        while chunk := os.read(fd, 1 << 16):
            arrived = time.time()
            *complete, partial = (partial + decoder.decode(chunk)).split("\n")
            with self._seen:
                self.times.extend([arrived] * len(complete))
                self.lines.extend(complete)
                self._seen.notify_all()
        with self._seen:
            if partial:
                self.times.append(time.time())
                self.lines.append(partial)
            self._seen.notify_all()

    def wait_for(self, test: Callable[[str], bool], timeout: float, what: str) -> str:
        """The first output line passing ``test`` (waiting up to ``timeout`` seconds)."""
        return self.lines[self._wait(test, timeout, what)]

    def _wait(self, test: Callable[[str], bool], timeout: float, what: str) -> int:
        deadline = time.monotonic() + timeout
        checked = 0
        with self._seen:
            while True:
                for index in range(checked, len(self.lines)):
                    if test(self.lines[index]):
                        return index
                checked = len(self.lines)
                remaining = deadline - time.monotonic()
                if self.popen.poll() is not None and checked == len(self.lines):
                    raise BenchError(
                        f"{self.name} exited ({self.popen.returncode}) before {what}:"
                        f"\n{self.tail()}"
                    )
                if remaining <= 0:
                    raise BenchError(
                        f"{self.name}: no {what} after {timeout:.0f} s:\n{self.tail()}"
                    )
                self._seen.wait(min(remaining, 0.5))

    def wait_ready(self, timeout: float = 120) -> float:
        """Wait for the jararaca readiness log line; return seconds from spawn to that line."""
        marker = BEAT_READY if self.name.startswith("beat") else WORKER_READY
        index = self._wait(lambda line: marker in line, timeout, "readiness line")
        return self.times[index] - self.started

    def tail(self, count: int = 20) -> str:
        return "\n".join(self.lines[-count:])

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM (once: a second one makes jararaca exit at once, without draining), wait up
        to ``timeout`` s for the graceful exit, then SIGKILL."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.popen.wait()

    def kill(self) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)


class Procs:
    """The children of one scenario run; :meth:`close` kills any still alive."""

    def __init__(self) -> None:
        self.all: list[Proc] = []

    def spawn(
        self,
        name: str,
        args: Sequence[str],
        env: dict[str, str] | None = None,
        python: str = sys.executable,
    ) -> Proc:
        """Run ``python <args>`` from the repository root (another system's processes run with
        the python of its own virtualenv: bench.peers)."""
        popen = subprocess.Popen(
            [python, *args],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        proc = Proc(name, popen, time.time())
        threading.Thread(target=proc.pump, daemon=True, name=f"pump-{name}").start()
        self.all.append(proc)
        return proc

    def jararaca(
        self,
        kind: str,
        app: str,
        broker_url: str,
        backend_url: str,
        *extra: str,
        env: dict[str, str] | None = None,
    ) -> Proc:
        """Start ``jararaca beat|worker APP`` on the given servers."""
        index = sum(p.name.startswith(kind) for p in self.all)
        args = ["-m", "jararaca", kind, app, "--broker-url", broker_url]
        args += ["--backend-url", backend_url, "--graceful-shutdown-seconds", "10", *extra]
        return self.spawn(f"{kind}-{index}", args, env)

    def close(self) -> None:
        for proc in self.all:
            proc.kill()

    def __enter__(self) -> Procs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress(procs: Sequence[Proc]) -> int:
    """The sum of the last ``PROGRESS <n>`` line of each process (see bench.recorder). A line
    that only starts so (another write of the process ran into it) is passed over."""
    total = 0
    for proc in procs:
        for line in reversed(proc.lines):
            found = PROGRESS_LINE.fullmatch(line)
            if found:
                total += int(found[1])
                break
    return total


def wait_progress(procs: Sequence[Proc], count: int, *, stall: float, limit: float) -> int:
    """Wait until ``procs`` recorded ``count`` items in all, no progress was made for ``stall``
    seconds, or ``limit`` seconds passed; return how many were recorded."""
    began = last_change = time.monotonic()
    seen = progress(procs)
    while seen < count:
        time.sleep(0.1)
        now = time.monotonic()
        current = progress(procs)
        if current != seen:
            seen, last_change = current, now
        if now - last_change > stall or now - began > limit:
            break
    return seen


def stop_all(procs: Sequence[Proc], timeout: float = 60) -> int:
    """SIGTERM every process at once (they drain in parallel), wait for each; return how many
    did not exit 0 (a jararaca beat or worker drains and exits 0 on SIGTERM), showing the end
    of their output."""
    for proc in procs:
        if proc.popen.poll() is None:
            proc.popen.send_signal(signal.SIGTERM)
    bad = 0
    for proc in procs:
        code = proc.wait_exit(timeout)
        if code != 0:
            bad += 1
            print(f"warning: {proc.name} exited {code}:\n{proc.tail(15)}", file=sys.stderr)
    return bad
