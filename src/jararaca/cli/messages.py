"""``jararaca delayed`` and ``jararaca dead-letters``: the messages held back or given up on.

``delayed list|cancel`` (the delayed queue) and ``dead-letters list|replay|purge`` (what the
workers gave up on), each a thin shell over :class:`jararaca.control.Control` (see
:mod:`jararaca.cli.control_common`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from jararaca.cli.control_common import Target, emit, run, show, target_options
from jararaca.cli.errors import EXIT_FAILURE
from jararaca.errors import ConfigError

if TYPE_CHECKING:
    from jararaca.control import Control


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


COMMANDS = (delayed, dead_letters)
