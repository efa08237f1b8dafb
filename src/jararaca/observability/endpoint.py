"""``--metrics-port``: what a service needs to serve its metrics and probes.

:class:`MetricsConfig` is checked when it is made (a bad port, a public address without a
token), before anything starts. :func:`telemetry_for` and :func:`open_endpoint` import
prometheus-client only when metrics are asked for, so a process without ``--metrics-port``
(and ``pip install jararaca`` without the ``metrics`` extra) never loads it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jararaca.backends.base import Admin
from jararaca.errors import ConfigError
from jararaca.loopback import is_loopback
from jararaca.observability.readiness import Readiness
from jararaca.observability.telemetry import Telemetry

if TYPE_CHECKING:
    from jararaca.engines import Engines
    from jararaca.observability.heartbeats import Heartbeat
    from jararaca.observability.prometheus import PrometheusMetrics

log = logging.getLogger("jararaca.metrics")


@dataclass(frozen=True)
class MetricsConfig:
    """Where to serve ``/metrics``, ``/healthz`` and ``/readyz``; port 0 picks a free one."""

    port: int
    host: str = "127.0.0.1"
    token: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(
                f"metrics port {self.port} is not a TCP port: give one from 1 to 65535 "
                "(--metrics-port / JARARACA_METRICS_PORT), or 0 for any free port"
            )
        if not self.token and not is_loopback(self.host):
            raise ConfigError(
                f"refusing to serve metrics on {self.host!r} without a token: anything beyond "
                "127.0.0.1 must ask for one. Set --metrics-token (JARARACA_METRICS_TOKEN) and "
                "give it to Prometheus as a bearer token, or keep --metrics-host 127.0.0.1"
            )


def telemetry_for(config: MetricsConfig | None) -> Telemetry:
    """Log lines always; metrics counted only when they will be served."""
    if config is None:
        return Telemetry()
    return Telemetry(_prometheus_metrics())


def _prometheus_metrics() -> PrometheusMetrics:
    try:
        from jararaca.observability.prometheus import PrometheusMetrics
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "prometheus_client":
            raise
        raise ConfigError(
            "--metrics-port needs prometheus-client, which is not installed: run "
            "`pip install 'jararaca[metrics]'` (it is part of 'jararaca[distributed]')"
        ) from None
    return PrometheusMetrics()


async def open_endpoint(
    stack: AsyncExitStack,
    config: MetricsConfig | None,
    telemetry: Telemetry,
    engines: Engines,
    *,
    heartbeat: Heartbeat | None,
    running: Callable[[], int] | None = None,
) -> Readiness | None:
    """With ``config``, serve the metrics and probes until ``stack`` closes and say where in
    the heartbeat. Called before the engines connect, so /healthz answers during a long
    connect; the caller says ``readiness.opened()`` once they are (until then /readyz is
    503)."""
    if config is None:
        return None
    from jararaca.observability.probes import LoopBridge, ProbeServer
    from jararaca.observability.prometheus import PrometheusMetrics

    metrics = telemetry.metrics
    if not isinstance(metrics, PrometheusMetrics):
        raise RuntimeError("open_endpoint needs a Telemetry made by telemetry_for(config)")
    bridge = LoopBridge(asyncio.get_running_loop())
    admin: Admin = engines.backend

    def pending() -> int | None:
        try:
            return bridge.call(admin.pending_count)
        except Exception as exc:  # unreachable backend: no sample this scrape
            log.debug("delayed queue length unknown: %s", exc)
            return None

    metrics.watch_pending(pending)
    if running is not None:
        metrics.watch_running(running)
    readiness = Readiness(engines.backend, engines.broker)
    stack.callback(readiness.close)
    try:
        server = ProbeServer(
            config.host, config.port, metrics.registry, bridge, readiness.problems, config.token
        )
    except OSError as exc:
        raise ConfigError(
            f"cannot serve metrics on {config.host}:{config.port}: {exc.strerror or exc}. "
            "Pick a free port (--metrics-port / JARARACA_METRICS_PORT), or 0 for any"
        ) from None
    server.start()
    stack.push_async_callback(server.stop)
    host = socket.gethostname() if config.host in ("0.0.0.0", "::", "") else config.host
    address = f"http://{_bracketed(host)}:{server.port}"
    log.info("serving /metrics, /healthz and /readyz on %s", address)
    if heartbeat is not None:
        heartbeat.advertise(address)
    return readiness


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
