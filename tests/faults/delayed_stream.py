"""A stream of delayed pings enqueued one at a time from a thread until stopped, through a
failover: when each enqueue was acknowledged, how many jararaca refused (an outage: the caller
would retry) and any other exception (a bug: it must be a jararaca error). Used by the
failover tests (test_sentinel_failover.py, test_redis_cluster_failover.py)."""

from __future__ import annotations

import asyncio
import threading
import time

from jararaca import connect
from jararaca.errors import JararacaError
from tests.fixtures.dist_app import Ping
from tests.integration.cluster import Cluster


class DelayedStream:
    def __init__(self, cluster: Cluster, due_in: float) -> None:
        self.cluster = cluster
        self.due_in = due_in
        self.acknowledged: dict[str, float] = {}  # message id -> when the enqueue returned
        # The latest of those, read by the test while this thread still writes the dict.
        self.last_acknowledged = 0.0
        self.refused = 0
        self.unexpected: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    async def _run(self) -> None:
        cluster = self.cluster
        try:
            async with connect(
                broker_url=cluster.broker_url, backend_url=cluster.backend_url, connect_timeout=30
            ) as publisher:
                n = 0
                while not self._stop.is_set():
                    n += 1
                    try:
                        message_id = await publisher.delay(Ping(n=100_000 + n), self.due_in)
                    except JararacaError:
                        self.refused += 1
                        await asyncio.sleep(0.05)  # pacing, not a wait for an outcome
                        continue
                    self.acknowledged[message_id] = self.last_acknowledged = time.time()
                    await asyncio.sleep(0.01)
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.unexpected.append(exc)
