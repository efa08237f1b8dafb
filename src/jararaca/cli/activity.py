"""``jararaca runs`` and ``jararaca status``: what the actions did and which processes are up.

``runs`` lists the latest runs of the app's actions; ``status`` the beats and workers by their
heartbeats. Both are thin shells over :class:`jararaca.control.Control` (see
:mod:`jararaca.cli.control_common`).
"""

from __future__ import annotations

import click

from jararaca.cli.control_common import Target, show, target_options


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


@click.command("status")
@target_options
@click.pass_context
def status(ctx: click.Context, target: Target) -> None:
    """Beats and workers by their heartbeats (gone: silent for three lease periods)."""
    from jararaca.control import text

    show(ctx, target, lambda c: c.processes(), text.processes)


COMMANDS = (runs, status)
