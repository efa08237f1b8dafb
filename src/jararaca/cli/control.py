"""The control plane's commands: ``schedules``, ``runs``, ``delayed``, ``dead-letters``, ``status``.

Each is a thin shell over :class:`jararaca.control.Control`: it loads the app, opens a Control
on ``--backend-url`` (the broker URL gives the namespace, and is connected to only for dead
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
from functools import partial
from typing import TYPE_CHECKING, Any

import click

from jararaca.cli.errors import EXIT_CONFIG, EXIT_FAILURE, fail, run_reporting_errors
from jararaca.cli.options import (
    command_log_level_option,
    configure_logging,
    envvars,
    log_level,
    option,
)
from jararaca.errors import ConfigError

if TYPE_CHECKING:
    from jararaca.control import Control

F = Callable[..., Any]
Body = Callable[["Control"], Awaitable[int | None]]  # returns the exit code (None: 0)
TIME_EXAMPLE = "e.g. 2024-05-01T00:00:00Z or 2024-05-01T02:00:00+02:00"


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
    ]
    command: F = wrapper
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def run(ctx: click.Context, target: Target, body: Body) -> None:
    """Load the app, open a Control on the target and run ``body`` with it."""
    configure_logging(log_level(ctx))
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


# -- jararaca schedules ---------------------------------------------------------------------


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

        configure_logging(log_level(ctx))
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


# -- jararaca runs --------------------------------------------------------------------------


@click.command("runs")
@target_options
@click.option("--action", default=None, help="Only this action's runs.")
@click.option("--outcome", default=None, help="Only runs that ended so: succeeded, failed, ...")
@click.option("--limit", type=int, default=50, show_default=True)
@click.pass_context
def runs(
    ctx: click.Context, target: Target, action: str | None, outcome: str | None, limit: int
) -> None:
    """The latest runs of the app's actions, newest scheduled first."""
    from jararaca.control import text

    show(ctx, target, lambda c: c.runs(action, outcome, limit), text.runs)


# -- jararaca delayed -----------------------------------------------------------------------


@click.group()
def delayed() -> None:
    """Messages waiting in the delayed queue."""


@delayed.command("list")
@target_options
@click.option("--topic", default=None, help="Only messages of this topic.")
@click.option("--limit", type=int, default=100, show_default=True)
@click.pass_context
def delayed_list(ctx: click.Context, target: Target, topic: str | None, limit: int) -> None:
    """Pending delayed messages, soonest first."""
    from jararaca.control import text

    show(ctx, target, lambda c: c.delayed(topic, limit), text.delayed)


@delayed.command("cancel")
@target_options
@click.option("--key", default=None, help="The idempotency key it was published with.")
@click.option("--message-id", default=None, help="Its message id.")
@click.pass_context
def delayed_cancel(
    ctx: click.Context, target: Target, key: str | None, message_id: str | None
) -> None:
    """Remove a pending delayed message (exit 1 when none matched)."""

    async def body(control: Control) -> int:
        if (key is None) == (message_id is None):
            raise ConfigError("give exactly one of --key or --message-id")
        cancelled = await control.cancel_delayed(key, message_id)
        what = f"key {key!r}" if key is not None else f"message id {message_id!r}"
        if cancelled:
            done = f"cancelled the message with {what}"
        else:
            done = f"no pending message with {what} (already published, cancelled, or never queued)"
        emit(target, {"cancelled": cancelled}, done)
        return 0 if cancelled else EXIT_FAILURE

    run(ctx, target, body)


# -- jararaca dead-letters ------------------------------------------------------------------


@click.group("dead-letters")
def dead_letters() -> None:
    """Messages and fires the workers gave up on (needs --broker-url)."""


@dead_letters.command("list")
@target_options
@click.option("--limit", type=int, default=100, show_default=True)
@click.pass_context
def dead_letters_list(ctx: click.Context, target: Target, limit: int) -> None:
    """Dead letters with the reason each was dead-lettered."""
    from jararaca.control import text

    show(ctx, target, lambda c: c.dead_letters(limit), text.dead_letters)


@dead_letters.command("replay")
@target_options
@click.option("--id", "ids", multiple=True, help="A dead letter to replay (repeat; default all).")
@click.pass_context
def dead_letters_replay(ctx: click.Context, target: Target, ids: tuple[str, ...]) -> None:
    """Publish dead letters back to their topic or action."""

    async def body(control: Control) -> None:
        count = await control.replay_dead_letters(list(ids) or None)
        emit(target, {"replayed": count}, f"replayed {count} dead letter(s)")

    run(ctx, target, body)


@dead_letters.command("purge")
@target_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def dead_letters_purge(ctx: click.Context, target: Target, yes: bool) -> None:
    """Drop every dead letter (asks first unless --yes)."""

    async def body(control: Control) -> None:
        if not yes:
            click.confirm(
                f"Drop every dead letter of namespace {control.namespace!r}?", abort=True, err=True
            )
        count = await control.purge_dead_letters()
        emit(target, {"purged": count}, f"purged {count} dead letter(s)")

    run(ctx, target, body)


# -- jararaca status ------------------------------------------------------------------------


@click.command("status")
@target_options
@click.pass_context
def status(ctx: click.Context, target: Target) -> None:
    """Beats and workers by their heartbeats (gone: silent for three lease periods)."""
    from jararaca.control import text

    show(ctx, target, lambda c: c.processes(), text.processes)


COMMANDS = (schedules, runs, delayed, dead_letters, status)
