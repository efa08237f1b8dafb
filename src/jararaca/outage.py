"""Riding out a server outage: capped exponential backoff with jitter, logged once."""

from __future__ import annotations

import logging
import random
import time

# A failure this soon after the last warning belongs to the same incident (a restarted server
# also breaks the pooled connections once more when it is back): no second warning.
QUIET_SECONDS = 30.0


class Outage:
    """Tracks one dependency's failures: the first failure of an incident is logged as a
    warning, the rest are counted quietly, and recovery is logged once with how long it
    lasted."""

    def __init__(
        self, what: str, log: logging.Logger, *, first: float = 0.2, cap: float = 5.0
    ) -> None:
        self.what = what
        self.log = log
        self.first = first
        self.cap = cap
        self._since: float | None = None
        self._failures = 0
        self._last_warning: float | None = None
        self._announced = False

    def failed(self, exc: BaseException) -> float:
        """Record a failure; return how long to wait before the next attempt."""
        now = time.monotonic()
        if self._since is None:
            self._since = now
            self._failures = 0
            self._announced = (
                self._last_warning is None or now - self._last_warning >= QUIET_SECONDS
            )
            if self._announced:
                self._last_warning = now
                self.log.warning("%s failed: %s; retrying with backoff", self.what, exc)
            else:
                self.log.debug("%s failed again: %s", self.what, exc)
        self._failures += 1
        delay = min(self.cap, self.first * 2.0 ** (self._failures - 1))
        return delay * random.uniform(0.5, 1.0)

    def recovered(self) -> None:
        if self._since is None:
            return
        if self._announced:
            self.log.warning(
                "%s works again after %.1f s (%d failed attempt(s))",
                self.what,
                time.monotonic() - self._since,
                self._failures,
            )
        self._since = None
