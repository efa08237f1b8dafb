"""When the beat finished dispatching a burst, seen from Redis without disturbing it.

A thread asks Redis every ``PERIOD`` seconds how many entries the namespace's delayed queue
and in-flight set hold (two ZCARDs); the first time both are empty after the due instant is
when the last message of the burst was confirmed by RabbitMQ and forgotten by the beat.
"""

from __future__ import annotations

import threading
import time

import redis

from jararaca.backends.redis_keys import Keys

PERIOD = 0.05


class DispatchWatch:
    def __init__(self, url: str, namespace: str, after: float) -> None:
        self._client = redis.Redis.from_url(url)
        self._keys = Keys.for_namespace(namespace)
        self._after = after
        self.emptied_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(PERIOD):
            pipe = self._client.pipeline(transaction=False)
            pipe.zcard(self._keys.delayed)
            pipe.zcard(self._keys.inflight)
            pending, inflight = pipe.execute()
            now = time.time()
            if now > self._after and pending == 0 and inflight == 0:
                self.emptied_at = now
                return

    def stop(self) -> float | None:
        self._stop.set()
        self._thread.join()
        self._client.close()
        return self.emptied_at
