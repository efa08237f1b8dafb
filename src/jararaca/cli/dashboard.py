"""``jararaca dashboard``: serve the web dashboard (extra ``jararaca[dashboard]``).

The address is checked first, before anything is imported or bound: without a token only a
loopback address is allowed. FastAPI and uvicorn are imported inside the command, so the other
commands never need the extra. The servers are reached once before uvicorn starts, so an
unreachable backend is one clear error instead of a failed lifespan.
"""

from __future__ import annotations

import asyncio

import click

from jararaca.cli.errors import EXIT_CONFIG, fail, run_reporting_errors
from jararaca.cli.options import (
    command_log_format_option,
    command_log_level_option,
    configure_command_logging,
    envvars,
    log_level,
    option,
)
from jararaca.errors import ConfigError
from jararaca.loopback import is_loopback

DASHBOARD_MODULES = ("fastapi", "starlette", "jinja2", "uvicorn")


def refuse_open_binding(host: str, token: str | None) -> None:
    if token or is_loopback(host):
        return
    fail(
        f"refusing to serve the dashboard on {host!r} without a token: on an address other "
        "than the loopback one (127.0.0.1) anyone who reaches it could pause, trigger and "
        "purge. Give a token with --token or JARARACA_DASHBOARD_TOKEN (e.g. the output of "
        "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`), or bind 127.0.0.1 "
        "and put a reverse proxy with its own authentication in front.",
        EXIT_CONFIG,
    )


def missing_dashboard_extra(exc: ModuleNotFoundError) -> str:
    return (
        f"jararaca dashboard needs FastAPI, Jinja2 and uvicorn, and {exc.name!r} is not "
        "installed: install the dashboard extra with pip install 'jararaca[dashboard]' "
        "(or 'jararaca[all]')"
    )


@click.command("dashboard")
@click.argument("app_path", envvar=envvars("APP_PATH"), required=True)
@option(
    "--backend-url",
    env="BACKEND_URL",
    default=None,
    help="The beats' and workers' backend, e.g. redis://localhost:6379.",
)
@option(
    "--broker-url",
    env="BROKER_URL",
    default=None,
    help="Their broker URL: its exchange names the namespace (default jararaca); connected "
    "to only for dead letters.",
)
@option("--host", env="DASHBOARD_HOST", default="127.0.0.1", show_default=True)
@option(
    "--port", env="DASHBOARD_PORT", type=click.IntRange(0, 65535), default=8765, show_default=True
)
@option(
    "--token",
    env="DASHBOARD_TOKEN",
    default=None,
    help="Required by every page and API call (login form, or Authorization: Bearer); "
    "required to bind an address other than 127.0.0.1.",
)
@option(
    "--root-path",
    env="DASHBOARD_ROOT_PATH",
    default="",
    help="The path prefix a reverse proxy serves the dashboard under, e.g. /jararaca.",
)
@option(
    "--refresh-seconds",
    env="DASHBOARD_REFRESH_SECONDS",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="How often the pages reload themselves (0: never).",
)
@option(
    "--connect-timeout",
    env="CONNECT_TIMEOUT",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds to keep retrying an unreachable server at start-up (0: try once).",
)
@command_log_level_option
@command_log_format_option
@click.pass_context
def dashboard(
    ctx: click.Context,
    app_path: str,
    backend_url: str | None,
    broker_url: str | None,
    host: str,
    port: int,
    token: str | None,
    root_path: str,
    refresh_seconds: float,
    connect_timeout: float,
) -> None:
    """Serve the web dashboard of the app's schedules, runs, delayed messages and dead letters."""
    token = token or None
    refuse_open_binding(host, token)
    configure_command_logging(ctx)
    root_path = root_path.rstrip("/")
    if root_path and not root_path.startswith("/"):
        fail(f"--root-path {root_path!r} must start with '/', e.g. /jararaca", EXIT_CONFIG)

    def start() -> None:
        try:
            import uvicorn

            from jararaca.dashboard import create_app
        except ModuleNotFoundError as exc:
            if (exc.name or "").partition(".")[0] not in DASHBOARD_MODULES:
                raise
            fail(missing_dashboard_extra(exc), EXIT_CONFIG)
        from jararaca.apploader import load_app
        from jararaca.control import Control

        app = load_app(app_path)
        if backend_url is None:
            raise ConfigError(
                "the dashboard reads the backend: pass --backend-url (or set "
                "JARARACA_BACKEND_URL / BACKEND_URL) as given to the beats and workers, e.g. "
                "redis://localhost:6379, with their --broker-url (its exchange names the "
                "namespace and it holds the dead letters)"
            )
        url = backend_url

        def open_control() -> Control:
            return Control(app, url, broker_url, connect_timeout=connect_timeout)

        async def reach_servers() -> None:
            async with open_control():
                pass

        asyncio.run(reach_servers())
        web = create_app(
            open_control,
            token=token,
            refresh_seconds=refresh_seconds,
            # Without a token, a request naming another host is another site's page that
            # rebound its name to 127.0.0.1: refused.
            allowed_hosts=None if token else ["127.0.0.1", "localhost", "[::1]", host.lower()],
        )
        click.echo(f"jararaca dashboard on http://{host}:{port}{root_path}/", err=True)
        uvicorn.run(
            web,
            host=host,
            port=port,
            root_path=root_path,
            log_level=log_level(ctx).lower(),
            server_header=False,
            access_log=False,
        )

    run_reporting_errors(start)


COMMANDS = (dashboard,)
