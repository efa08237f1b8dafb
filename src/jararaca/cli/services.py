"""The commands that run an app: ``beat``, ``worker`` (distributed), ``scheduler`` (embedded)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from jararaca.cli.errors import run_reporting_errors
from jararaca.cli.options import (
    configure_command_logging,
    option,
    service_options,
    split_names,
)
from jararaca.cli.reload import run_with_reload

if TYPE_CHECKING:
    from jararaca.observability.endpoint import MetricsConfig

F = TypeVar("F", bound=Callable[..., Any])

BROKER_EXAMPLE = "e.g. amqp://guest:guest@localhost:5672/?exchange=jararaca"
BACKEND_EXAMPLE = "e.g. redis://localhost:6379"

interval_option = option(
    "--interval",
    env="INTERVAL",
    type=click.FloatRange(min=0.001),
    default=1.0,
    show_default=True,
    help="Longest sleep without looking at the backend (seconds).",
)


def actions_option(verb: str) -> Callable[[F], F]:
    return option(
        "--actions",
        env="ACTIONS",
        default=None,
        help=f"Comma-separated action names to {verb} (default: all).",
    )


def groups_option(what: str) -> Callable[[F], F]:
    return option(
        "--groups",
        env="GROUPS",
        default=None,
        help=f"Comma-separated groups{what} (default: all groups). In bash set "
        "JARARACA_GROUPS, as bash ignores GROUPS=... (a builtin).",
    )


def metrics_options(func: F) -> F:
    """--metrics-port, --metrics-host, --metrics-token: /metrics, /healthz and /readyz."""
    decorators: list[Callable[[F], F]] = [
        option(
            "--metrics-port",
            env="METRICS_PORT",
            type=click.IntRange(0, 65535),
            default=None,
            help="Serve /metrics (Prometheus), /healthz and /readyz on this port (default: "
            "off; 0 picks a free port, shown by `jararaca status`). Needs the metrics extra.",
        ),
        option(
            "--metrics-host",
            env="METRICS_HOST",
            default="127.0.0.1",
            show_default=True,
            help="Address the metrics endpoint binds; any other than loopback needs a token.",
        ),
        option(
            "--metrics-token",
            env="METRICS_TOKEN",
            default=None,
            help="Bearer token every request to the metrics endpoint must carry.",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def metrics_config(port: int | None, host: str, token: str | None) -> MetricsConfig | None:
    """The endpoint asked for, checked (a bad one is a ConfigError, reported in one line)."""
    if port is None:
        return None
    from jararaca.observability.endpoint import MetricsConfig

    return MetricsConfig(port=port, host=host, token=token or None)


def launch(ctx: click.Context, start: Callable[[], None], reload: bool, src_dir: str) -> None:
    configure_command_logging(ctx)
    if reload:
        run_with_reload(src_dir)
        return
    run_reporting_errors(start)


@click.command()
@service_options
@interval_option
@option("--broker-url", env="BROKER_URL", required=True, help=BROKER_EXAMPLE)
@option("--backend-url", env="BACKEND_URL", required=True, help=BACKEND_EXAMPLE)
@actions_option("schedule")
@groups_option(": only their actions are scheduled")
@metrics_options
@click.pass_context
def beat(
    ctx: click.Context,
    app_path: str,
    reload: bool,
    src_dir: str,
    graceful_shutdown_seconds: float,
    connect_timeout: float,
    interval: float,
    broker_url: str,
    backend_url: str,
    actions: str | None,
    groups: str | None,
    metrics_port: int | None,
    metrics_host: str,
    metrics_token: str | None,
) -> None:
    """Distributed: publish the app's due fires and delayed messages to the broker."""

    def start() -> None:
        from jararaca.apploader import load_app
        from jararaca.scheduler.beat_worker import BeatWorker

        BeatWorker(
            load_app(app_path),
            interval,
            backend_url,
            broker_url,
            split_names(actions),
            groups=split_names(groups),
            graceful_shutdown_seconds=graceful_shutdown_seconds,
            connect_timeout=connect_timeout,
            metrics=metrics_config(metrics_port, metrics_host, metrics_token),
        ).run()

    launch(ctx, start, reload, src_dir)


@click.command()
@service_options
@option("--broker-url", env="BROKER_URL", required=True, help=BROKER_EXAMPLE)
@option("--backend-url", env="BACKEND_URL", required=True, help=BACKEND_EXAMPLE)
@option(
    "--handlers",
    env="HANDLERS",
    default=None,
    help="Comma-separated message handler names to run (default: all).",
)
@actions_option("run")
@groups_option(" to run")
@metrics_options
@click.pass_context
def worker(
    ctx: click.Context,
    app_path: str,
    reload: bool,
    src_dir: str,
    graceful_shutdown_seconds: float,
    connect_timeout: float,
    broker_url: str,
    backend_url: str,
    handlers: str | None,
    actions: str | None,
    groups: str | None,
    metrics_port: int | None,
    metrics_host: str,
    metrics_token: str | None,
) -> None:
    """Distributed: run the app's actions and message handlers delivered by the broker."""

    def start() -> None:
        from jararaca.apploader import load_app
        from jararaca.worker import Worker

        Worker(
            load_app(app_path),
            broker_url,
            backend_url,
            split_names(handlers),
            split_names(groups),
            action_names=split_names(actions),
            graceful_shutdown_seconds=graceful_shutdown_seconds,
            connect_timeout=connect_timeout,
            metrics=metrics_config(metrics_port, metrics_host, metrics_token),
        ).run()

    launch(ctx, start, reload, src_dir)


@click.command()
@service_options
@interval_option
@option(
    "--backend-url",
    env="BACKEND_URL",
    default="memory://",
    show_default=True,
    help=(
        "Where schedule state and delayed messages live: memory:// (lost on exit) or "
        "sqlite:///jararaca.db (durable, one host)."
    ),
)
@actions_option("run")
@groups_option(" to run")
@metrics_options
@click.pass_context
def scheduler(
    ctx: click.Context,
    app_path: str,
    reload: bool,
    src_dir: str,
    graceful_shutdown_seconds: float,
    connect_timeout: float,
    interval: float,
    backend_url: str,
    actions: str | None,
    groups: str | None,
    metrics_port: int | None,
    metrics_host: str,
    metrics_token: str | None,
) -> None:
    """Embedded: run actions and delayed messages in this process, no servers needed."""

    def start() -> None:
        from jararaca.apploader import load_app
        from jararaca.scheduler.scheduler import Scheduler

        Scheduler(
            load_app(app_path),
            interval,
            backend_url,
            split_names(actions),
            groups=split_names(groups),
            graceful_shutdown_seconds=graceful_shutdown_seconds,
            connect_timeout=connect_timeout,
            metrics=metrics_config(metrics_port, metrics_host, metrics_token),
        ).run()

    launch(ctx, start, reload, src_dir)


COMMANDS = (beat, worker, scheduler)
