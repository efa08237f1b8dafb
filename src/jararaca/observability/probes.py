"""The HTTP endpoint of ``--metrics-port``: ``/metrics``, ``/healthz`` and ``/readyz``.

It is prometheus-client's own WSGI app for ``/metrics`` plus the two probes, served by the
standard library's WSGI server in a thread (as ``prometheus_client.start_http_server`` does),
so a scrape or a probe never waits behind the event loop's work, and the probes can ask the
loop how it is doing from outside:

- ``/healthz`` is a watchdog: 200 when the event loop runs a callback within a few seconds,
  503 when it is stuck (a blocking call in user code, a hung driver).
- ``/readyz`` is 200 while the backend answers and the broker connection is up, 503 with the
  reasons otherwise.
"""

from __future__ import annotations

import asyncio
import hmac
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import TimeoutError as FutureTimeout
from socketserver import ThreadingMixIn
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

T = TypeVar("T")
StartResponse = Callable[..., Any]
# A loop that cannot run a callback within this many seconds counts as stuck.
HEALTH_SECONDS = 5.0
# How long /readyz and the delayed-queue gauge wait for the loop's answer.
LOOP_ANSWER_SECONDS = 5.0


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow scraper never keeps the process from exiting


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes and probes come every few seconds: no access log line for each."""


class LoopBridge:
    """Runs things on the service's event loop from the server's threads."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def turns(self, within: float = HEALTH_SECONDS) -> bool:
        ran = threading.Event()
        try:
            self.loop.call_soon_threadsafe(ran.set)
        except RuntimeError:  # the loop is closed
            return False
        return ran.wait(within)

    def call(self, make: Callable[[], Awaitable[T]], within: float = LOOP_ANSWER_SECONDS) -> T:
        """``await make()`` on the loop; raises TimeoutError when it takes longer."""

        async def run() -> T:
            return await make()

        future = asyncio.run_coroutine_threadsafe(run(), self.loop)
        try:
            return future.result(within)
        except FutureTimeout:
            future.cancel()
            raise TimeoutError(f"no answer from the event loop within {within:.0f} s") from None


class ProbeServer:
    """Serves the registry and the probes on ``host:port`` until :meth:`stop`."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        bridge: LoopBridge,
        problems: Callable[[], Awaitable[list[str]]],
        token: str | None = None,
    ) -> None:
        self._metrics_app = make_wsgi_app(registry)
        self._bridge = bridge
        self._problems = problems
        self._token = token.encode() if token else None
        server_class = _Server6 if ":" in host else _Server
        self._server = make_server(
            host, port, self._app, server_class=server_class, handler_class=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="jararaca-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    async def stop(self) -> None:
        # shutdown() waits for serve_forever's loop to notice (up to half a second): off the
        # event loop, which the probes' threads may be waiting on meanwhile.
        await asyncio.to_thread(self._server.shutdown)
        self._server.server_close()

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if self._token is not None and not self._authorized(environ):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")],
            )
            return [b"a bearer token is required (--metrics-token)\n"]
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            healthy = self._bridge.turns()
            return _text(start_response, healthy, "ok" if healthy else "event loop stuck")
        if path == "/readyz":
            try:
                problems = self._bridge.call(self._problems)
            except TimeoutError as exc:
                problems = [str(exc)]
            return _text(start_response, not problems, "; ".join(problems) or "ready")
        if path in ("/metrics", "/"):
            environ = {**environ, "PATH_INFO": "/metrics"}
            return list(self._metrics_app(environ, start_response))
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics, /healthz or /readyz\n"]

    def _authorized(self, environ: dict[str, Any]) -> bool:
        assert self._token is not None
        given = environ.get("HTTP_AUTHORIZATION", "").encode()
        return hmac.compare_digest(given, b"Bearer " + self._token)


def _text(start_response: StartResponse, ok: bool, body: str) -> list[bytes]:
    status = "200 OK" if ok else "503 Service Unavailable"
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [body.encode() + b"\n"]
