"""What the control plane's commands share: their target options, opening a Control, printing.

The commands (``schedules`` in :mod:`jararaca.cli.schedules`, ``delayed`` and ``dead-letters``
in :mod:`jararaca.cli.messages`, ``runs`` and ``status`` in :mod:`jararaca.cli.activity`) are
each a thin shell over :class:`jararaca.control.Control`: it loads the app, opens a Control on
``--backend-url`` (the broker URL gives the namespace, and is connected to only for dead
letters), calls one method and prints the answer, as a table or, with ``--json``, as the
models' JSON. Errors go through :func:`run_reporting_errors`: one line, exit 2 for bad input.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from jararaca.cli.errors import run_reporting_errors
from jararaca.cli.options import (
    command_log_format_option,
    command_log_level_option,
    configure_command_logging,
    envvars,
    option,
)
from jararaca.errors import ConfigError

if TYPE_CHECKING:
    from jararaca.control import Control

F = Callable[..., Any]
Body = Callable[["Control"], Awaitable[int | None]]  # returns the exit code (None: 0)


@dataclass(frozen=True)
class Target:
    """What every control command is pointed at, and how it prints."""

    app_path: str
    backend_url: str | None
    broker_url: str | None
    connect_timeout: float
    as_json: bool


def target_options(func: F) -> F:
    """APP_PATH, --backend-url, --broker-url, --connect-timeout, --json (as ``target``)."""

    @functools.wraps(func)
    def wrapper(
        *args: Any,
        app_path: str,
        backend_url: str | None,
        broker_url: str | None,
        connect_timeout: float,
        as_json: bool,
        **kwargs: Any,
    ) -> Any:
        target = Target(app_path, backend_url, broker_url, connect_timeout, as_json)
        return func(*args, target=target, **kwargs)

    decorators: list[Callable[[F], F]] = [
        click.argument("app_path", envvar=envvars("APP_PATH"), required=True),
        option(
            "--backend-url",
            env="BACKEND_URL",
            default=None,
            help="The beats' and workers' backend, e.g. redis://localhost:6379.",
        ),
        option(
            "--broker-url",
            env="BROKER_URL",
            default=None,
            help="Their broker URL: its exchange names the namespace (default jararaca); "
            "connected to only for dead letters.",
        ),
        option(
            "--connect-timeout",
            env="CONNECT_TIMEOUT",
            type=click.FloatRange(min=0),
            default=0.0,
            show_default=True,
            help="Seconds to keep retrying an unreachable server (0: try once).",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts."),
        command_log_level_option,
        command_log_format_option,
    ]
    command: F = wrapper
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def run(ctx: click.Context, target: Target, body: Body) -> None:
    """Load the app, open a Control on the target and run ``body`` with it."""
    configure_command_logging(ctx)
    code: int | None = None

    def start() -> None:
        nonlocal code
        from jararaca.apploader import load_app
        from jararaca.control import Control

        app = load_app(target.app_path)
        if target.backend_url is None:
            raise ConfigError(
                "this command reads the backend: pass --backend-url (or set "
                "JARARACA_BACKEND_URL / BACKEND_URL) as given to the beats and workers, "
                "e.g. redis://localhost:6379, with their --broker-url (its exchange names "
                "the namespace)"
            )
        backend_url = target.backend_url

        async def main() -> int | None:
            async with Control(
                app, backend_url, target.broker_url, connect_timeout=target.connect_timeout
            ) as control:
                return await body(control)

        code = asyncio.run(main())

    run_reporting_errors(start)
    if code:
        ctx.exit(code)


def show(
    ctx: click.Context,
    target: Target,
    fetch: Callable[[Control], Awaitable[Any]],
    render: Callable[[Any, datetime], str],
) -> None:
    """Run ``fetch`` and print its answer: ``render(answer, now)``, or JSON with --json."""

    async def body(control: Control) -> None:
        found = await fetch(control)
        emit(target, found, render(found, control.clock.now()))

    run(ctx, target, body)


def emit(target: Target, data: Any, text: str) -> None:
    """``data`` (models, or lists of them) as JSON with --json, else ``text``."""
    if target.as_json:
        click.echo(json.dumps(_plain(data), indent=2))
    else:
        click.echo(text)


def _plain(data: Any) -> Any:
    if isinstance(data, list):
        return [_plain(item) for item in data]
    dump = getattr(data, "model_dump", None)
    return dump(mode="json") if dump is not None else data
