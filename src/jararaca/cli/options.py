"""Options shared by the commands: the two environment variables of each, logging, name lists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from jararaca.observability.logs import LOG_FORMATS, LogFormat, configure_logging

F = TypeVar("F", bound=Callable[..., Any])

ENV_PREFIX = "JARARACA_"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LEVEL_ALIASES = {"WARN": "WARNING"}
DEFAULT_LEVEL = "INFO"
LEVEL_METAVAR = "[debug|info|warning|error|critical]"
_LEVEL_KEY = "jararaca.log_level"
_FORMAT_KEY = "jararaca.log_format"
FORMAT_HELP = "How log lines look: text, or json (one object per line with structured fields)."


def envvars(name: str) -> list[str]:
    """The variables an option reads, first set wins: ``JARARACA_<NAME>``, then ``<NAME>``."""
    return [f"{ENV_PREFIX}{name}", name]


def option(*decls: str, env: str, **kwargs: Any) -> Callable[[F], F]:
    """A click option that also reads ``JARARACA_<env>`` and ``<env>`` (listed in --help)."""
    return click.option(*decls, envvar=envvars(env), show_envvar=True, **kwargs)


def split_names(value: str | None) -> list[str] | None:
    """``"a, b,"`` -> ``["a", "b"]``; nothing (or only commas) -> ``None``, meaning all."""
    if not value:
        return None
    names = [part.strip() for part in value.split(",") if part.strip()]
    return names or None


def parse_log_level(value: str) -> str:
    """A logging level name in any case, ``warn`` meaning ``WARNING`` -> ``"WARNING"``."""
    level = value.strip().upper()
    level = LEVEL_ALIASES.get(level, level)
    if level not in LEVELS:
        raise click.BadParameter(
            f"{value!r} is not a log level: use debug, info, warning (or warn), error or critical"
        )
    return level


def _remember_level(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    # ctx.meta is shared by the root context and the command's, so the level given after the
    # command overrides the one given before it (or read from the environment).
    if value is not None:
        ctx.meta[_LEVEL_KEY] = parse_log_level(value)


def root_log_level_option(func: F) -> F:
    """``jararaca --log-level LEVEL COMMAND``: also read from JARARACA_LOG_LEVEL / LOG_LEVEL."""
    decorator = option(
        "--log-level",
        env="LOG_LEVEL",
        default=DEFAULT_LEVEL.lower(),
        show_default=True,
        metavar=LEVEL_METAVAR,
        expose_value=False,
        callback=_remember_level,
        help="Logging level (any case; warn = warning). Also accepted after the command.",
    )
    return decorator(func)


def command_log_level_option(func: F) -> F:
    """``jararaca COMMAND ... --log-level LEVEL``: overrides the one given before the command."""
    decorator = click.option(
        "--log-level",
        default=None,
        metavar=LEVEL_METAVAR,
        expose_value=False,
        callback=_remember_level,
        help="As `jararaca --log-level` (default: info, or JARARACA_LOG_LEVEL / LOG_LEVEL).",
    )
    return decorator(func)


def log_level(ctx: click.Context) -> str:
    """The level in force: after the command, else before it, else the variables, else INFO."""
    level = ctx.meta.get(_LEVEL_KEY, DEFAULT_LEVEL)
    return str(level)


def _remember_format(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:  # as for the level: after the command wins
        ctx.meta[_FORMAT_KEY] = value.lower()


def root_log_format_option(func: F) -> F:
    """``jararaca --log-format text|json COMMAND``: also JARARACA_LOG_FORMAT / LOG_FORMAT."""
    decorator = option(
        "--log-format",
        env="LOG_FORMAT",
        type=click.Choice(LOG_FORMATS, case_sensitive=False),
        default="text",
        show_default=True,
        expose_value=False,
        callback=_remember_format,
        help=FORMAT_HELP + " Also accepted after the command.",
    )
    return decorator(func)


def command_log_format_option(func: F) -> F:
    decorator = click.option(
        "--log-format",
        type=click.Choice(LOG_FORMATS, case_sensitive=False),
        default=None,
        expose_value=False,
        callback=_remember_format,
        help=FORMAT_HELP + " (default: text, or JARARACA_LOG_FORMAT / LOG_FORMAT)",
    )
    return decorator(func)


def log_format(ctx: click.Context) -> LogFormat:
    return "json" if ctx.meta.get(_FORMAT_KEY) == "json" else "text"


def configure_command_logging(ctx: click.Context) -> None:
    """The level and format the command line and the environment ask for."""
    configure_logging(log_level(ctx), log_format(ctx))


def service_options(func: F) -> F:
    """The argument and options every command has: APP_PATH, --reload, --src-dir, ..."""
    decorators: list[Callable[[F], F]] = [
        click.argument("app_path", envvar=envvars("APP_PATH"), required=True),
        option(
            "--reload",
            env="RELOAD",
            is_flag=True,
            default=False,
            help="Restart when a .py file under --src-dir changes (development; needs the "
            "reload extra: pip install 'jararaca[reload]').",
        ),
        option(
            "--src-dir",
            env="SRC_DIR",
            default="src",
            show_default=True,
            help="Directory watched by --reload.",
        ),
        option(
            "--graceful-shutdown-seconds",
            env="GRACEFUL_SHUTDOWN_SECONDS",
            type=click.FloatRange(min=0),
            default=20.0,
            show_default=True,
            help="On SIGTERM/SIGINT, how long in-flight runs may finish.",
        ),
        option(
            "--connect-timeout",
            env="CONNECT_TIMEOUT",
            type=click.FloatRange(min=0),
            default=60.0,
            show_default=True,
            help="One budget, in seconds, for reaching both servers (RabbitMQ and Redis) at "
            "start-up, retrying with backoff; not a timeout per server or per attempt.",
        ),
        command_log_level_option,
        command_log_format_option,
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func
