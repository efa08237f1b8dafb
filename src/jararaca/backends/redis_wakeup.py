"""Wake-ups across processes: an enqueue that makes the delayed queue's head sooner publishes
on a channel, and every subscribed beat wakes up instead of sleeping out its interval."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

log = logging.getLogger("jararaca.backends.redis")

_LISTEN_BACKOFF_CAP = 5.0  # seconds between two resubscription attempts, at most
# How long stop() waits for the listener to end before cutting its connection, and after.
_STOP_SECONDS = 2.0


class WakeupChannel:
    """Holds one subscription for all of a backend's listeners (asyncio events)."""

    def __init__(
        self, client: Callable[[], aioredis.Redis], channel: str, where: str, name: str
    ) -> None:
        self._client = client
        self._channel = channel
        self._where = where  # the redacted URL, for log lines
        self._name = name
        self._events: set[asyncio.Event] = set()
        self._task: asyncio.Task[None] | None = None
        self._pubsub: PubSub | None = None  # the subscription held now, if any
        self._stopping = False

    def add(self, event: asyncio.Event, *, connected: bool) -> None:
        self._events.add(event)
        if connected:
            self.start()

    def discard(self, event: asyncio.Event) -> None:
        self._events.discard(event)

    def start(self) -> None:
        """Subscribe, if someone listens and no subscription runs yet."""
        if not self._events or (self._task is not None and not self._task.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: the backend's connect() starts it
        self._stopping = False
        self._task = loop.create_task(self._listen(), name=self._name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._stopping = True
        if task is None or task.done():
            return
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=_STOP_SECONDS)
        if not done:
            # redis-py can swallow a cancellation that lands at an unlucky moment of a read
            # (redis/redis-py#2028): cut the subscription's connection, so that the read fails
            # and the listener, seeing it is stopping, returns.
            pubsub = self._pubsub
            if pubsub is not None and pubsub.connection is not None:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.connection.disconnect(nowait=True)
            done, _ = await asyncio.wait({task}, timeout=_STOP_SECONDS)
        if not done:
            log.warning("the wake-up listener on Redis %s did not stop; left behind", self._where)
            return
        with contextlib.suppress(asyncio.CancelledError, Exception):
            task.result()

    def _wake_all(self) -> None:
        for event in list(self._events):
            event.set()

    async def _on_reconnect(self, _connection: object) -> None:
        # redis-py reconnects and resubscribes by itself after a short outage; a wake-up may
        # have been published meanwhile, so wake everyone once it is back.
        self._wake_all()

    async def _listen(self) -> None:
        """Hold the subscription; resubscribe with backoff on failure."""
        failing, delay = False, 0.0
        while not self._stopping:
            pubsub = self._client().pubsub()
            self._pubsub = pubsub
            try:
                await pubsub.subscribe(self._channel)
                if pubsub.connection is not None:
                    pubsub.connection.register_connect_callback(self._on_reconnect)
                async for message in pubsub.listen():
                    kind = message.get("type")
                    if kind == "subscribe":
                        # Back once Redis confirmed the subscription (on a Cluster the call
                        # can return before a node answers, and fail again at once: one
                        # incident, said once).
                        if failing:
                            log.info("wake-up channel on Redis %s is back", self._where)
                        failing, delay = False, 0.0
                        # Wake-ups published before this subscription existed were lost: a
                        # spurious wake-up costs a listener one look at the queue, a lost one
                        # a whole interval.
                        self._wake_all()
                    elif kind == "message":
                        self._wake_all()
            except Exception as exc:  # whatever broke, wake-ups must come back
                if self._stopping:
                    return
                if not failing:
                    log.warning(
                        "lost the wake-up channel on Redis %s (%s); retrying with backoff",
                        self._where,
                        exc,
                    )
                failing = True
            finally:
                if pubsub.connection is not None:
                    pubsub.connection.deregister_connect_callback(self._on_reconnect)
                self._pubsub = None
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # unannotated upstream
            delay = min(_LISTEN_BACKOFF_CAP, max(0.1, delay * 2))
            await asyncio.sleep(delay)
