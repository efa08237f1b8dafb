"""CPU time and memory of a process, read from /proc/<pid>/stat and /proc/<pid>/status."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        text = stat.read()
    # The command name (field 2) may hold spaces: the fields that follow start after its ')'.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLOCK_TICKS


def memory_kib(pid: int) -> dict[str, int]:
    """``VmRSS`` (resident now) and ``VmHWM`` (peak resident) in KiB."""
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
    return found


@dataclass
class CpuWindow:
    """CPU used by a process between :meth:`start` and :meth:`stop`, as % of one core."""

    pid: int
    _cpu0: float = 0.0
    _wall0: float = 0.0
    percent: float = 0.0
    seconds: float = 0.0  # the window's length

    def start(self) -> None:
        self._cpu0, self._wall0 = cpu_seconds(self.pid), time.monotonic()

    def stop(self) -> float:
        cpu, wall = cpu_seconds(self.pid) - self._cpu0, time.monotonic() - self._wall0
        self.seconds = wall
        self.percent = 100.0 * cpu / wall if wall > 0 else 0.0
        return self.percent


@dataclass
class RssSampler:
    """Samples a process's resident memory every ``period`` seconds in a thread."""

    pid: int
    period: float = 0.5
    samples_kib: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.samples_kib.append(memory_kib(self.pid)["VmRSS"])
            except (OSError, KeyError):
                return  # the process ended

    def stop(self) -> dict[str, float]:
        """Stop sampling; peak (VmHWM), last and max sampled RSS in MiB."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            peak = memory_kib(self.pid).get("VmHWM", 0)
        except OSError:
            peak = max(self.samples_kib, default=0)
        last = self.samples_kib[-1] if self.samples_kib else 0
        return {"rss_peak_mib": peak / 1024, "rss_last_mib": last / 1024}


def find_pid(comm: str) -> int | None:
    """The pid of the oldest running process with this command name (``beam.smp``: the
    system's RabbitMQ, not a private one that a test suite may have started since)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm", encoding="utf-8") as f:
                    if f.read().strip() == comm:
                        found.append(int(entry))
            except OSError:
                continue
    return min(found, key=_start_ticks, default=None)


def _start_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            text = stat.read()
    except OSError:
        return 1 << 62
    return int(text[text.rindex(")") + 2 :].split()[19])  # field 22: start time


def load_average() -> float:
    """The 1-minute load average (other users of the machine show up here)."""
    with open("/proc/loadavg", encoding="ascii") as f:
        return float(f.read().split()[0])


def wait_quiet(
    pid: int, *, below_pct: float = 10.0, step: float = 0.5, limit: float = 300
) -> float:
    """Wait until the process used under ``below_pct`` of a core over ``step`` seconds (it
    finished its start-up work); return that instant (time.time()). Raise BenchError when it
    did not within ``limit`` seconds: the figure could not be measured."""
    from bench.procs import BenchError

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        window = CpuWindow(pid)
        window.start()
        time.sleep(step)
        if window.stop() < below_pct:
            return time.time()
    raise BenchError(f"process {pid} still used >= {below_pct}% of a core after {limit:.0f} s")
