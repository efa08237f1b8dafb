"""Calling user code: timeout, exception handler, and a lease renewed while it runs."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from jararaca.clock import Clock
from jararaca.scheduler.decorators import handler_arity

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


@contextlib.asynccontextmanager
async def renewing(
    renew: Callable[[], Awaitable[bool]], clock: Clock, every: timedelta, what: str
) -> Any:
    """Renew a lease every ``every`` while the block runs."""

    async def loop() -> None:
        while True:
            await clock.sleep_until(clock.now() + every)
            try:
                if not await renew():
                    log.warning("%s: lost its lease (another worker may take it over)", what)
                    return
            except Exception as exc:  # a backend outage: keep running, try again next time
                log.warning("%s: could not renew its lease: %s", what, exc)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
