"""The one lifecycle of beat, worker and embedded scheduler: start, serve, drain, stop.

``start`` opens everything a service needs onto an :class:`AsyncExitStack` (connections it
built itself, its consumers, its background loops), so ``stop`` closes exactly what was
opened, in reverse order, and a start-up that fails half-way closes what it had opened.
``run`` is the blocking form with signal handling: the first SIGINT/SIGTERM drains for the
grace period, a second one cancels in-flight work at once (its leases are released so that
another process takes it over now) and exits with ``128 + signal``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from jararaca import ready_file
from jararaca.event_loop import loop_factory
from jararaca.observability import tracing

log = logging.getLogger("jararaca")
# After a second signal, how long releasing leases and settling messages may take before the
# process exits anyway (a server that does not answer must not keep it alive).
HURRY_SECONDS = 5.0


class Service:
    """Base of the long-running components; subclasses fill in the four steps."""

    def __init__(self, *, graceful_shutdown_seconds: float) -> None:
        self.grace = graceful_shutdown_seconds
        self._stack: AsyncExitStack | None = None
        self._hurry = asyncio.Event()

    # -- the steps subclasses provide -----------------------------------------------------

    async def _open(self, stack: AsyncExitStack) -> None:
        """Open what the service needs, pushing the undo of each step onto ``stack``."""

    async def _serve(self, stop: asyncio.Event) -> None:
        """Do the work until ``stop`` is set."""
        await stop.wait()

    async def drain(self, grace: float) -> None:
        """Stop intake and let in-flight work finish for up to ``grace`` seconds (less once
        :meth:`hurry` was called); then cancel what is left."""

    # -- the lifecycle --------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._stack is not None

    async def start(self) -> None:
        if self._stack is not None:
            raise RuntimeError(f"{type(self).__name__} is already started")
        tracing.prepare()
        stack = AsyncExitStack()
        try:
            await self._open(stack)
        except BaseException:
            await _close_after_failed_start(stack)
            raise
        self._stack = stack

    async def stop(self, grace: float | None = None) -> None:
        """Drain (``grace`` seconds, by default the service's), then close what start opened."""
        stack, self._stack = self._stack, None
        if stack is None:
            return
        try:
            await self.drain(self.grace if grace is None else grace)
        finally:
            await stack.aclose()

    async def serve(self, stop: asyncio.Event | None = None, *, own_process: bool = False) -> None:
        """Start, serve until ``stop`` is set, then stop (the async form of :meth:`run`).

        ``own_process``: nothing else runs in this process (as under :meth:`run` and the
        CLI), so once started, what start-up left in memory is frozen out of the garbage
        collector's work and the collector runs less often (:func:`freeze_start_up`), and
        the ready file is written (:mod:`jararaca.ready_file`)."""
        stop = stop or asyncio.Event()
        await self.start()
        ready: Path | None = None
        try:
            if own_process:
                freeze_start_up()
                ready = ready_file.announce()
            await self._serve(stop)
        finally:
            if ready is not None:
                ready_file.withdraw(ready)  # not ready from the moment it begins to stop
            await self.stop()

    def hurry(self) -> None:
        """Cut the drain short: in-flight work is cancelled and given back at once."""
        self._hurry.set()

    def run(self) -> None:
        """Run until SIGINT/SIGTERM (blocking, with its own event loop)."""
        run_service(self)


# How many more container objects than it freed the process may allocate before the
# collector looks at them (CPython's default is 700). A burst keeps many new ones alive for a
# while (queued envelopes and their headers, run records kept against duplicates, tasks in
# flight), so at 700 the collector kept walking objects still in use, and promoted them to
# generations that full collections walk again.
YOUNG_COLLECTION_THRESHOLD = 10_000


def freeze_start_up() -> None:
    """Collect once, then move every object still alive to the garbage collector's permanent
    generation (``gc.freeze``), and let the collector wait for more new objects before it
    runs (:data:`YOUNG_COLLECTION_THRESHOLD`). The modules, classes, app and connections
    loaded at start-up live as long as the process, yet each full collection walked all of
    them again while a burst of messages kept the collector busy (measured here: the
    embedded drain of a 60,000-message burst 15-19% faster frozen; of a 100,000-message
    burst, 1.2-1.35x faster again with the higher threshold). Only for a process that serves
    one service: frozen objects are still freed when their last reference goes, but a cycle
    among them never is, so a library inside someone else's process leaves its collector
    alone."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, oldest)


async def wait_or_hurry(hurry: asyncio.Event, tasks: set[asyncio.Task[None]], grace: float) -> None:
    """Wait for ``tasks`` for up to ``grace`` seconds, or until ``hurry`` is set."""
    if not tasks or hurry.is_set():
        return
    hurried = asyncio.ensure_future(hurry.wait())
    try:
        deadline = asyncio.get_running_loop().time() + grace
        pending: set[asyncio.Future[Any]] = set(tasks)
        while pending and not hurried.done():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            _, pending = await asyncio.wait(
                pending | {hurried}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            pending.discard(hurried)
    finally:
        hurried.cancel()


async def _close_after_failed_start(stack: AsyncExitStack) -> None:
    """Close what a failed start-up opened, so the process exits with its one-line error
    instead of the drivers' shutdown tracebacks; their own failures are only logged."""
    try:
        await stack.aclose()
    except Exception as exc:
        log.debug("closing after a failed start-up: %s", exc)


def _exit_now(code: int) -> None:
    # Lines logged in this loop turn wait for its end to be written (see
    # observability.logs): write them first, os._exit skips every flush.
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    os._exit(code)


def run_service(service: Service) -> None:
    """Serve until SIGINT/SIGTERM, on the event loop ``JARARACA_EVENT_LOOP`` picks
    (:mod:`jararaca.event_loop`); see the module docstring for the second signal."""
    exit_code = 0

    async def main() -> None:
        nonlocal exit_code
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            nonlocal exit_code
            name = signal.Signals(signum).name
            if stop.is_set():
                if exit_code:
                    return  # already hurrying
                exit_code = 128 + signum
                log.warning("second %s: cancelling in-flight work and exiting now", name)
                service.hurry()
                loop.call_later(HURRY_SECONDS, _exit_now, exit_code)
                return
            log.info(
                "%s received: draining (up to %.0f s; send it again to exit at once)",
                name,
                service.grace,
            )
            stop.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)
        await service.serve(stop, own_process=True)

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(main())
    if exit_code:
        with contextlib.suppress(Exception):
            logging.shutdown()
        sys.exit(exit_code)
