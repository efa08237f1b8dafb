"""``connect()``: a bound publisher for code outside actions and handlers (a web request, a
script), built from URLs like the services' engines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from jararaca.clock import Clock
from jararaca.engines import Engines
from jararaca.messagebus.publisher import Publisher, bind_publisher
from jararaca.observability import tracing


@asynccontextmanager
async def connect(
    broker_url: str = "memory://",
    backend_url: str = "memory://",
    *,
    clock: Clock | None = None,
    connect_timeout: float = 0.0,
) -> AsyncIterator[Publisher]:
    """Connect to a broker and backend and bind a publisher for the block.

    ``connect_timeout`` (seconds) keeps retrying unreachable servers for that long; by
    default the first failure raises at once, as a web request would want."""
    engines = Engines.build(broker_url, backend_url)
    tracing.prepare()
    async with AsyncExitStack() as stack:
        await engines.open(stack, timeout=connect_timeout)
        await engines.broker.declare([])  # the exchange must exist before anything is published
        with bind_publisher(Publisher(engines.backend, engines.broker, clock)) as publisher:
            yield publisher
