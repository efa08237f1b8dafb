"""The ``jararaca`` command: a thin shell over the library (beat, worker, scheduler)."""

from __future__ import annotations

import logging
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from jararaca.errors import ConfigError, JararacaError

log = logging.getLogger("jararaca.cli")
EXIT_FAILURE = 1
EXIT_CONFIG = 2


def _split_names(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.argument("app_path", envvar="APP_PATH", required=True),
        click.option(
            "--reload",
            envvar="RELOAD",
            is_flag=True,
            default=False,
            help="Restart when a .py file under --src-dir changes (development).",
        ),
        click.option(
            "--src-dir",
            envvar="SRC_DIR",
            default="src",
            show_default=True,
            help="Directory watched by --reload.",
        ),
        click.option(
            "--graceful-shutdown-seconds",
            envvar="GRACEFUL_SHUTDOWN_SECONDS",
            type=click.FloatRange(min=0),
            default=20.0,
            show_default=True,
            help="On SIGTERM, how long in-flight runs may finish.",
        ),
        click.option(
            "--connect-timeout",
            envvar="CONNECT_TIMEOUT",
            type=click.FloatRange(min=0),
            default=60.0,
            show_default=True,
            help="How long to keep retrying unreachable servers at start-up.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group()
@click.option(
    "--log-level",
    envvar="LOG_LEVEL",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
def main(log_level: str) -> None:
    """Scheduled work for asyncio: cron actions and delayed messages."""
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The AMQP driver logs every reconnection attempt (once a second during an outage);
    # jararaca logs the outage once and its end, so the driver's own lines are only noise.
    for noisy in ("aiormq", "aio_pika"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)


@main.command()
@_common
@click.option(
    "--interval",
    envvar="INTERVAL",
    type=click.FloatRange(min=0.001),
    default=1.0,
    show_default=True,
    help="Longest sleep without looking at the backend (seconds).",
)
@click.option(
    "--broker-url",
    envvar="BROKER_URL",
    required=True,
    help="e.g. amqp://guest:guest@localhost:5672/?exchange=jararaca",
)
@click.option(
    "--backend-url", envvar="BACKEND_URL", required=True, help="e.g. redis://localhost:6379"
)
@click.option(
    "--actions",
    envvar="ACTIONS",
    default=None,
    help="Comma-separated action names to schedule (default: all).",
)
def beat(
    app_path: str,
    reload: bool,
    src_dir: str,
    graceful_shutdown_seconds: float,
    connect_timeout: float,
    interval: float,
    broker_url: str,
    backend_url: str,
    actions: str | None,
) -> None:
    """Publish the app's due fires and delayed messages to the broker."""

    def start() -> None:
        from jararaca.apploader import load_app
        from jararaca.scheduler.beat_worker import BeatWorker

        BeatWorker(
            load_app(app_path),
            interval,
            backend_url,
            broker_url,
            _split_names(actions),
            graceful_shutdown_seconds=graceful_shutdown_seconds,
            connect_timeout=connect_timeout,
        ).run()

    _launch(start, reload, src_dir)


@main.command()
@_common
@click.option("--broker-url", envvar="BROKER_URL", required=True)
@click.option("--backend-url", envvar="BACKEND_URL", required=True)
@click.option(
    "--handlers",
    envvar="HANDLERS",
    default=None,
    help="Comma-separated message handler names to run (default: all).",
)
@click.option(
    "--groups",
    envvar="GROUPS",
    default=None,
    help="Comma-separated groups of actions and handlers to run (default: all).",
)
def worker(
    app_path: str,
    reload: bool,
    src_dir: str,
    graceful_shutdown_seconds: float,
    connect_timeout: float,
    broker_url: str,
    backend_url: str,
    handlers: str | None,
    groups: str | None,
) -> None:
    """Run the app's actions and message handlers delivered by the broker."""

    def start() -> None:
        from jararaca.apploader import load_app
        from jararaca.worker import Worker

        Worker(
            load_app(app_path),
            broker_url,
            backend_url,
            _split_names(handlers),
            _split_names(groups),
            graceful_shutdown_seconds=graceful_shutdown_seconds,
            connect_timeout=connect_timeout,
        ).run()

    _launch(start, reload, src_dir)


@main.command()
@_common
@click.option(
    "--interval",
    envvar="INTERVAL",
    type=click.FloatRange(min=0.001),
    default=1.0,
    show_default=True,
)
@click.option(
    "--actions",
    envvar="ACTIONS",
    default=None,
    help="Comma-separated action names to run (default: all).",
)
def scheduler(
    app_path: str,
    reload: bool,
    src_dir: str,
    graceful_shutdown_seconds: float,
    connect_timeout: float,
    interval: float,
    actions: str | None,
) -> None:
    """Embedded mode: run actions and delayed messages in this process, no servers."""
    del connect_timeout  # nothing to connect to in memory

    def start() -> None:
        from jararaca.apploader import load_app
        from jararaca.scheduler.scheduler import Scheduler

        Scheduler(
            load_app(app_path),
            interval,
            scheduled_action_names=_split_names(actions),
            graceful_shutdown_seconds=graceful_shutdown_seconds,
        ).run()

    _launch(start, reload, src_dir)


def _launch(start: Callable[[], None], reload: bool, src_dir: str) -> None:
    if reload:
        _run_with_reload(src_dir)
        return
    try:
        start()
    except ConfigError as exc:
        click.echo(f"jararaca: error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    except JararacaError as exc:
        click.echo(f"jararaca: error: {exc}", err=True)
        sys.exit(EXIT_FAILURE)


def _run_with_reload(src_dir: str) -> None:
    """Run this same command without --reload in a child, restarted on .py changes."""
    import watchfiles

    if not Path(src_dir).is_dir():
        click.echo(
            f"jararaca: error: --src-dir {src_dir!r} is not a directory: point --src-dir (or "
            "SRC_DIR) at the folder holding your code, or drop --reload",
            err=True,
        )
        sys.exit(EXIT_CONFIG)
    argv = [a for a in sys.argv[1:] if a != "--reload"]
    # The child inherits the environment: RELOAD=true there would make it watch again.
    os.environ["RELOAD"] = "false"
    command = shlex.join([sys.executable, "-m", "jararaca", *argv])
    log.info("watching %s for .py changes", Path(src_dir).resolve())
    watchfiles.run_process(
        src_dir,
        target=command,
        target_type="command",
        watch_filter=watchfiles.PythonFilter(),
        callback=lambda changes: log.info("%d change(s): restarting", len(changes)),
    )
