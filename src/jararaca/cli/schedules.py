"""``jararaca schedules``: see and steer the app's scheduled actions.

``list``, ``describe``, ``pause``, ``resume``, ``trigger`` and ``backfill``, each a thin shell
over :class:`jararaca.control.Control` (see :mod:`jararaca.cli.control_common`).
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

import click

from jararaca.cli.control_common import Target, emit, run, show, target_options
from jararaca.cli.errors import EXIT_CONFIG, fail, run_reporting_errors
from jararaca.cli.options import configure_command_logging
from jararaca.errors import ConfigError

if TYPE_CHECKING:
    from jararaca.control import Control

TIME_EXAMPLE = "e.g. 2024-05-01T00:00:00Z or 2024-05-01T02:00:00+02:00"


def parse_time(flag: str, value: str) -> datetime:
    """An aware instant from ISO 8601 text; one clear ConfigError otherwise."""
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(f"{flag} {value!r} is not an ISO 8601 time: {TIME_EXAMPLE}") from None
    if at.tzinfo is None or at.utcoffset() is None:
        raise ConfigError(
            f"{flag} {value!r} has no time zone: add Z for UTC or an offset, {TIME_EXAMPLE}"
        )
    return at


@click.group()
def schedules() -> None:
    """See and steer the app's scheduled actions."""


@schedules.command("list")
@target_options
@click.pass_context
def schedules_list(ctx: click.Context, target: Target) -> None:
    """Every action: cron, time zone, next fire; with --backend-url also its state, last run."""
    from jararaca.control import text

    if target.backend_url is None:
        # From the app alone: nothing to connect to, so this works anywhere the app imports.
        def local() -> None:
            from jararaca.apploader import load_app
            from jararaca.clock import SystemClock
            from jararaca.control import schedules_from_app

            now = SystemClock().now()
            found = schedules_from_app(load_app(target.app_path), now)
            emit(target, found, text.schedules(found, now, backend=False))

        configure_command_logging(ctx)
        run_reporting_errors(local)
        return

    show(ctx, target, lambda c: c.schedules(), partial(text.schedules, backend=True))


@schedules.command("describe")
@target_options
@click.argument("action")
@click.option("--next", "count", type=int, default=10, show_default=True, help="Fires to show.")
@click.pass_context
def schedules_describe(ctx: click.Context, target: Target, action: str, count: int) -> None:
    """One action: its state, next fires and last 20 runs."""
    from jararaca.control import text

    show(ctx, target, lambda c: c.describe(action, next=count), text.describe)


@schedules.command("pause")
@target_options
@click.argument("action")
@click.option("--reason", default=None, help="Why, shown by list and describe.")
@click.pass_context
def schedules_pause(ctx: click.Context, target: Target, action: str, reason: str | None) -> None:
    """Stop firing ACTION from its next slot (skipped slots are not replayed on resume)."""

    async def body(control: Control) -> None:
        await control.pause(action, reason)
        info = await control.describe(action, next=1)
        emit(target, info, f"paused {info.id}" + (f": {reason}" if reason else ""))

    run(ctx, target, body)


@schedules.command("resume")
@target_options
@click.argument("action")
@click.pass_context
def schedules_resume(ctx: click.Context, target: Target, action: str) -> None:
    """Fire ACTION again from its next slot."""

    async def body(control: Control) -> None:
        was_paused = await control.resume(action)
        info = await control.describe(action, next=1)
        done = f"resumed {info.id}" if was_paused else f"{info.id} was not paused"
        emit(target, {"action": info.id, "was_paused": was_paused}, done)

    run(ctx, target, body)


@schedules.command("trigger")
@target_options
@click.argument("action")
@click.pass_context
def schedules_trigger(ctx: click.Context, target: Target, action: str) -> None:
    """Run ACTION once now (a beat dispatches it at once; overlap rules apply)."""

    async def body(control: Control) -> None:
        identity = await control.trigger(action)
        emit(target, {"fire_id": identity}, f"queued {identity}")

    run(ctx, target, body)


@schedules.command("backfill")
@target_options
@click.argument("action")
@click.option("--start", required=True, help=f"First instant, included ({TIME_EXAMPLE}).")
@click.option("--end", required=True, help="Last instant, excluded.")
@click.pass_context
def schedules_backfill(
    ctx: click.Context, target: Target, action: str, start: str, end: str
) -> None:
    """Run every slot of ACTION in [--start, --end) that has not run (at most 10,000)."""
    from jararaca.control import text

    try:  # parsed before connecting: a typo must not wait for a server
        first, last = parse_time("--start", start), parse_time("--end", end)
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)

    show(ctx, target, lambda c: c.backfill(action, first, last), lambda q, _: text.backfilled(q))


COMMANDS = (schedules,)
