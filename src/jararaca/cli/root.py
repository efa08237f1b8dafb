"""The ``jararaca`` group: --version, --log-level, and the commands."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import click

from jararaca.cli import activity, dashboard, messages, schedules, services
from jararaca.cli.options import root_log_format_option, root_log_level_option

DISTRIBUTION = "jararaca"


def installed_version() -> str:
    """The installed distribution's version (from its metadata, not from the source tree)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown (not installed: pip install jararaca)"


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"jararaca {installed_version()}")
    ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Print the installed version and exit.",
)
@root_log_level_option
@root_log_format_option
def main() -> None:
    """Scheduled work for asyncio: cron actions and delayed messages.

    Every option can also be set by an environment variable, JARARACA_<NAME> or <NAME>
    (e.g. JARARACA_BROKER_URL or BROKER_URL); the first one set wins, and the command
    line wins over both.
    """


# One module per command group: those that run an app, then the control plane's.
for _module in (services, schedules, activity, messages, dashboard):
    for _command in _module.COMMANDS:
        main.add_command(_command)
