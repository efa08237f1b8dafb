"""Metrics-on variants: a free port for each process's ``--metrics-port``, and a scraper.

The scraper stands in for a busy Prometheus: a thread GETs every endpoint's ``/metrics`` once a
second while a section is measured, so the cost measured is that of counting *and* of being
scraped (each scrape renders every series and reads the delayed queue's length from Redis on
the service's event loop).
"""

from __future__ import annotations

import math
import socket
import sys
import threading
import urllib.request
from collections.abc import Sequence

SCRAPE_INTERVAL_S = 1.0
SCRAPE_TIMEOUT_S = 2.0
# A body without this prefix is not jararaca's metrics (something else answered on the port).
METRIC_PREFIX = b"jararaca_"


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1. Each socket is held until all are
    picked, so no port is handed out twice; a port could still be taken by another program
    before the child binds it, which then fails to start (a run error, not a wrong figure)."""
    held = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in held]
    finally:
        for sock in held:
            sock.close()


def metrics_args(port: int | None) -> list[str]:
    """The ``jararaca beat|worker`` arguments serving metrics on ``port`` (None: none)."""
    return [] if port is None else ["--metrics-port", str(port)]


class Scraper:
    """GETs ``http://127.0.0.1:<port>/metrics`` for each port once a second, from a thread,
    between :meth:`start` and :meth:`stop` (or as a context manager, which stops it even when
    the repeat raises). With no port it does nothing: the same code runs metrics off."""

    def __init__(self, ports: Sequence[int], interval: float = SCRAPE_INTERVAL_S) -> None:
        self.urls = [f"http://127.0.0.1:{port}/metrics" for port in ports]
        self.interval = interval
        self.succeeded = dict.fromkeys(self.urls, 0)
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="bench-scraper")

    def start(self) -> None:
        if self.urls:
            self._thread.start()

    def stop(self) -> float:
        """Stop scraping (again: no harm); the number of successful scrapes of all endpoints,
        or NaN (an unmeasurable figure, which fails the run) when an endpoint never answered:
        the section would not have measured what it claims to."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
            if self.failed:
                print(f"warning: {self.failed} failed scrape(s) of {self.urls}", file=sys.stderr)
        if not self.urls or min(self.succeeded.values()) == 0:
            return math.nan
        return float(sum(self.succeeded.values()))

    def __enter__(self) -> Scraper:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            for url in self.urls:
                if self._scrape(url):
                    self.succeeded[url] += 1
                else:
                    self.failed += 1

    @staticmethod
    def _scrape(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_S) as response:
                return response.status == 200 and METRIC_PREFIX in response.read()
        except OSError:  # refused, timed out, an HTTP error status
            return False
