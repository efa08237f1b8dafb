"""The engines a service runs on: build them from URLs, connect them, close what was built.

Only the driver a URL's scheme needs is imported, so the embedded mode (``memory://``) never
imports redis or aio-pika; a URL whose driver is not installed fails with a
:class:`ConfigError` that names the ``pip install`` to run. A service closes exactly the
engines it built from URLs, never one it was handed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jararaca.backends.base import Backend
from jararaca.brokers.base import Broker
from jararaca.errors import ConfigError, JararacaError
from jararaca.redaction import redact
from jararaca.urls import memory_name, parse_backend_url, parse_broker_url

if TYPE_CHECKING:
    from jararaca.backends.sqlite_embedded import HandOff

log = logging.getLogger("jararaca")


def _missing_extra(exc: ModuleNotFoundError, url: str, driver: str, extra: str) -> ConfigError:
    return ConfigError(
        f"{redact(url)!r} needs the {driver} driver, which is not installed "
        f"(no module named {exc.name!r}): run `pip install 'jararaca[{extra}]'` "
        "(or 'jararaca[distributed]' for Redis and RabbitMQ)"
    )


def make_broker(url: str) -> Broker:
    config = parse_broker_url(url)
    if config.scheme == "memory":
        from jararaca.brokers.memory import MemoryBroker

        return MemoryBroker(memory_name(url), namespace=config.exchange, prefetch=config.prefetch)
    try:
        from jararaca.brokers.rabbitmq import RabbitMQBroker
    except ModuleNotFoundError as exc:
        if exc.name not in ("aio_pika", "aiormq", "pamqp"):
            raise
        raise _missing_extra(exc, url, "RabbitMQ", "rabbitmq") from None
    return RabbitMQBroker(url, namespace=config.exchange, prefetch=config.prefetch)


def make_backend(url: str, *, namespace: str) -> Backend:
    parts = parse_backend_url(url)
    if parts.scheme == "memory":
        from jararaca.backends.memory import MemoryBackend

        return MemoryBackend(memory_name(url), namespace=namespace)
    if parts.scheme == "sqlite":
        try:
            from jararaca.backends.sqlite import SqliteBackend
        except ModuleNotFoundError as exc:
            if exc.name not in ("sqlite3", "_sqlite3"):
                raise
            raise ConfigError(
                f"{redact(url)!r} needs Python's sqlite3 module, which this Python was built "
                "without: install a Python with SQLite (e.g. the python3 package of your "
                "system, or python.org's build), or use memory:// or redis://"
            ) from None
        return SqliteBackend(url, namespace=namespace)
    try:
        from jararaca.backends.redis import RedisBackend
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "redis":
            raise
        raise _missing_extra(exc, url, "Redis", "redis") from None
    return RedisBackend(url, namespace=namespace)


@dataclass(frozen=True)
class Engines:
    """A broker and a backend, and which of them were built here (and so are ours to close)."""

    broker: Broker
    backend: Backend
    owns_broker: bool
    owns_backend: bool

    @classmethod
    def build(
        cls,
        broker_url: str,
        backend_url: str,
        *,
        broker: Broker | None = None,
        backend: Backend | None = None,
    ) -> Engines:
        """Use the given engines; build the others from their URLs."""
        built_broker = broker or make_broker(broker_url)
        built_backend = backend or make_backend(backend_url, namespace=built_broker.namespace)
        return cls(built_broker, built_backend, broker is None, backend is None)

    async def open(self, stack: AsyncExitStack, *, timeout: float) -> None:
        """Connect the engines built here (retrying for up to ``timeout`` seconds in all,
        one budget for both servers) and push their closing onto ``stack``."""
        deadline = asyncio.get_running_loop().time() + timeout
        if self.owns_broker:
            await connect_with_retry(self.broker.connect, "the broker", deadline=deadline)
            stack.push_async_callback(self.broker.close)
        if self.owns_backend:
            await connect_with_retry(self.backend.connect, "the backend", deadline=deadline)
            stack.push_async_callback(self.backend.close)


def embedded_engines(engines: Engines) -> tuple[Engines, HandOff | None]:
    """The engines of the embedded scheduler. On a SQLite backend with the in-process broker
    it built itself, the broker is swapped for one that tells the durable hand-off (see
    :mod:`jararaca.backends.sqlite_embedded`) when each claimed message was settled, so that
    nothing published in memory is lost with the process. Otherwise the engines as given."""
    if "jararaca.backends.sqlite" not in sys.modules or not engines.owns_broker:
        return engines, None  # no SQLite backend was built (and none can be one)
    from jararaca.backends.sqlite import SqliteBackend
    from jararaca.brokers.memory import MemoryBroker

    if not isinstance(engines.backend, SqliteBackend) or type(engines.broker) is not MemoryBroker:
        return engines, None
    from jararaca.backends.sqlite_embedded import HandOff

    handoff = HandOff(engines.backend, engines.broker)
    return Engines(handoff.broker, engines.backend, True, engines.owns_backend), handoff


async def connect_with_retry(
    connect: Callable[[], Awaitable[None]], what: str, *, deadline: float
) -> None:
    """Call ``connect`` until it succeeds or the loop clock passes ``deadline`` (capped
    exponential backoff with jitter), logging the outage once; then re-raise the last error."""
    loop = asyncio.get_running_loop()
    delay = 0.2
    warned = False
    while True:
        try:
            await connect()
        except ConfigError:
            raise  # refused credentials or a bad URL: waiting will not fix it
        except JararacaError as exc:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise
            if not warned:
                log.warning(
                    "%s is unreachable (%s); retrying for up to %.0f s", what, exc, remaining
                )
                warned = True
            await asyncio.sleep(min(delay * random.uniform(0.5, 1.0), remaining))
            delay = min(delay * 2, 5.0)
        else:
            if warned:
                log.info("%s is reachable again", what)
            return


async def warn_if_volatile(backend: Backend) -> None:
    """One loud warning at start-up when a backend server could lose what it holds."""
    info = await backend.info()
    if info.in_process:
        return  # nothing outlives the process anyway, and no server setting could change it
    if info.evicts_keys:
        log.warning(
            "DATA AT RISK: the backend may evict keys under memory pressure (%s): delayed "
            "messages, fire claims and run leases could silently vanish. Set "
            "`maxmemory-policy noeviction` on this Redis.",
            info.detail,
        )
    if not info.persists:
        log.warning(
            "DATA AT RISK: the backend persists nothing (%s): a Redis restart loses every "
            "delayed message waiting there. Enable `appendonly yes` (or RDB save points) on "
            "this Redis.",
            info.detail,
        )
