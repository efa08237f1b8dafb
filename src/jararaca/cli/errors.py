"""How a command fails: one ``jararaca: error: ...`` paragraph on stderr and an exit code."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import NoReturn

import click

from jararaca.cli.options import log_format
from jararaca.errors import ConfigError, JararacaError
from jararaca.observability.logs import JsonFormatter

EXIT_FAILURE = 1  # a runtime failure, e.g. a server still unreachable after --connect-timeout
EXIT_CONFIG = 2  # bad configuration or input; click's usage errors exit with 2 too

# Modules of the optional extras, and the extra that installs each.
EXTRA_OF_MODULE = {
    "aio_pika": "distributed",
    "aiormq": "distributed",
    "pamqp": "distributed",
    "redis": "distributed",
    "watchfiles": "reload",
}


def fail(message: str, code: int = EXIT_CONFIG) -> NoReturn:
    # Log lines still buffered for this loop turn go out first: this line is the last one.
    for handler in logging.getLogger().handlers:
        handler.flush()
    ctx = click.get_current_context(silent=True)
    if ctx is not None and log_format(ctx) == "json":
        # --log-format json: every line is JSON, this last one too (a log pipeline reading
        # JSON lines would drop the one that says why the process stopped).
        record = logging.LogRecord("jararaca", logging.ERROR, __file__, 0, message, None, None)
        click.echo(JsonFormatter().format(record), err=True)
    else:
        click.echo(f"jararaca: error: {message}", err=True)
    sys.exit(code)


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The extra that provides the missing module, when it is one of ours."""
    root = (exc.name or "").partition(".")[0]
    return EXTRA_OF_MODULE.get(root)


def missing_extra_message(module: str, extra: str, needed_for: str) -> str:
    return (
        f"{needed_for} needs the {module!r} module, which is not installed: install the "
        f"{extra} extra with pip install 'jararaca[{extra}]' (or 'jararaca[all]')"
    )


def run_reporting_errors(start: Callable[[], None]) -> None:
    """Run ``start``; jararaca's errors become one line and exit code 2 (config) or 1."""
    try:
        start()
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    except JararacaError as exc:
        fail(str(exc), EXIT_FAILURE)
    except ModuleNotFoundError as exc:
        # A backstop: the URL parsers already name the extra for a missing driver.
        extra = missing_extra(exc)
        if extra is None:
            raise
        fail(
            missing_extra_message(exc.name or "?", extra, "a redis://, amqp:// or amqps:// URL"),
            EXIT_CONFIG,
        )
