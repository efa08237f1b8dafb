"""Readiness: whether a process's Redis (or other backend) and RabbitMQ connections are up now.

The broker says when its connection drops and comes back (its connection listeners); the
backend is asked with a cheap read, bounded in time, each time a probe asks, so /readyz
answers for the present rather than for the last operation that happened to run.
"""

from __future__ import annotations

import asyncio

from jararaca.backends.base import DelayedQueue
from jararaca.brokers.base import Broker

# How long the backend may take to answer before the process counts as not ready.
BACKEND_CHECK_SECONDS = 2.0


class Readiness:
    def __init__(self, backend: DelayedQueue, broker: Broker) -> None:
        self._backend = backend
        self._broker = broker
        self._opened = False
        self._broker_up = False
        self._broker_reason = "not connected yet"
        broker.add_connection_listener(self._on_broker_connection)

    def opened(self) -> None:
        """The service connected its engines (until now it is starting, not ready)."""
        self._opened = True
        self._broker_up = True

    def close(self) -> None:
        self._opened = False
        self._broker.remove_connection_listener(self._on_broker_connection)

    def _on_broker_connection(self, connected: bool, reason: str) -> None:
        self._broker_up = connected
        self._broker_reason = reason or "connection lost"

    async def problems(self) -> list[str]:
        """What keeps the process from doing its work now; empty when it is ready."""
        if not self._opened:
            return ["starting: not connected to the backend and broker yet"]
        found = []
        if not self._broker_up:
            found.append(f"broker unreachable: {self._broker_reason}")
        try:
            await asyncio.wait_for(self._backend.next_due(), BACKEND_CHECK_SECONDS)
        except TimeoutError:
            found.append(f"backend did not answer within {BACKEND_CHECK_SECONDS:.0f} s")
        except Exception as exc:  # any failure of the driver means "not ready", with why
            found.append(f"backend unreachable: {exc}")
        return found
