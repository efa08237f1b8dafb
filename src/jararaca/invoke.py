"""Calling user code: timeout, exception handler, and a lease renewed while it runs."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from jararaca.backends.base import RunLeases
from jararaca.clock import Clock

log = logging.getLogger("jararaca.worker")


async def call_user_code(
    call: Callable[[], Awaitable[Any]], *, timeout: float | None
) -> BaseException | None:
    """Run ``call`` under ``timeout``; return the exception it raised (TimeoutError when it ran
    out of time), or None. Cancellation of the caller is not swallowed."""
    try:
        if timeout is None:
            await call()
        else:
            async with asyncio.timeout(timeout):
                await call()
    except asyncio.CancelledError:
        raise
    except TimeoutError as exc:
        return exc if str(exc) else TimeoutError(f"timed out after {timeout} s")
    except Exception as exc:
        return exc
    return None


async def call_exception_handler(
    handler: Callable[..., Any] | None, exc: BaseException, extra: object, what: str
) -> None:
    """Call a user's sync or async exception handler; its own failure is only logged."""
    if handler is None:
        return
    try:
        result = handler(exc, extra) if handler_arity(handler) == 2 else handler(exc)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("the exception handler of %s raised", what)


class LeaseRenewer:
    """Keeps the leases of a worker's running runs alive with one loop for all of them.

    One loop (not a task per run) keeps the per-message cost flat; it sleeps on the injected
    clock, so the fake clock of ``TestScheduler`` drives renewals too. A run added with
    ``on_cancel`` (a ``cancel_other`` action's) is also asked, at each renewal, whether a newer
    fire wants it to stop; ``on_cancel`` is then called once."""

    def __init__(self, backend: RunLeases, owner: str, clock: Clock, lease: timedelta) -> None:
        self.backend = backend
        self.owner = owner
        self.clock = clock
        self.lease = lease
        self._active: dict[str, tuple[str | None, Callable[[], object] | None]] = {}
        self._nonempty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add(
        self,
        run_key: str,
        overlap_key: str | None,
        on_cancel: Callable[[], object] | None = None,
    ) -> None:
        self._active[run_key] = (overlap_key, on_cancel)
        self._nonempty.set()

    def discard(self, run_key: str) -> None:
        self._active.pop(run_key, None)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            if not self._active:
                self._nonempty.clear()
                await self._nonempty.wait()
            await self.clock.sleep_until(self.clock.now() + self.lease / 3)
            until = self.clock.now() + self.lease
            for run_key, (overlap_key, on_cancel) in list(self._active.items()):
                try:
                    kept = await self.backend.renew_run(
                        run_key, overlap_key=overlap_key, owner=self.owner, lease_until=until
                    )
                    stop = (
                        kept
                        and on_cancel is not None
                        and overlap_key is not None
                        and await self.backend.cancel_requested(run_key, overlap_key=overlap_key)
                    )
                except Exception as exc:  # an outage: keep running, try again next time
                    log.warning("%s: could not renew its lease: %s", run_key, exc)
                    continue
                if not kept and run_key in self._active:
                    log.warning("%s: lost its lease (another worker may take it over)", run_key)
                if stop and on_cancel is not None and self._active.get(run_key) is not None:
                    self._active[run_key] = (overlap_key, None)  # asked once is enough
                    on_cancel()


def handler_arity(handler: Callable[..., Any]) -> int:
    """How many positional arguments an exception handler accepts (1 or 2)."""
    try:
        params = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return 1
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 2
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return 2 if len(positional) >= 2 else 1
