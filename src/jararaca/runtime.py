"""Running a service in the foreground: its own event loop, signals, graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
from collections.abc import Awaitable, Callable

from jararaca.backends.base import Backend
from jararaca.brokers.base import Broker
from jararaca.errors import ConfigError, JararacaError

log = logging.getLogger("jararaca")


def run_service(serve: Callable[[asyncio.Event], Awaitable[None]], *, grace: float) -> None:
    """Run ``serve(stop)`` until SIGINT/SIGTERM sets ``stop``; the service then drains for up to
    ``grace`` seconds. A second signal exits at once (the broker requeues unacked messages)."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            if stop.is_set():
                log.warning("second %s: exiting now", signal.Signals(signum).name)
                os._exit(128 + signum)
            log.info(
                "%s received: draining (up to %.0f s; send it again to exit at once)",
                signal.Signals(signum).name,
                grace,
            )
            stop.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)
        await serve(stop)

    asyncio.run(main())


async def connect_with_retry(
    connect: Callable[[], Awaitable[None]], what: str, *, timeout: float
) -> None:
    """Call ``connect`` until it succeeds, for up to ``timeout`` seconds (capped exponential
    backoff with jitter), logging the outage once; then re-raise the last error."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
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
    """One loud warning at start-up when the backend could lose what it holds."""
    info = await backend.info()
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


async def close_quietly(*closers: Callable[[], Awaitable[None]]) -> None:
    """Close connections after a failed start-up, so the process exits with its one-line
    error instead of the drivers' shutdown tracebacks; their own failures are ignored."""
    for close in closers:
        try:
            await close()
        except Exception as exc:
            log.debug("closing after a failed start-up: %s", exc)


async def connect_services(broker: Broker, backend: Backend, *, timeout: float) -> None:
    """Connect the broker then the backend, each retried for up to ``timeout`` seconds."""
    await connect_with_retry(broker.connect, "the broker", timeout=timeout)
    await connect_with_retry(backend.connect, "the backend", timeout=timeout)
