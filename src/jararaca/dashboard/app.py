"""``create_app``: the dashboard's FastAPI application.

One :class:`Control` is opened by the app's lifespan and shared by every request. Errors
become pages or JSON by where they happened: a bad input is a 400 with the Control's own
message, an unreachable server a 503, anything else a 500 that shows no traceback (the log has
it). Every response carries headers that keep the pages out of frames and caches and allow no
script but the dashboard's own file.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from jararaca.control import Control
from jararaca.dashboard import api, forms, pages
from jararaca.dashboard.auth import Guard, LoginRequired, route_path
from jararaca.dashboard.rendering import base_path, render
from jararaca.errors import ConfigError, CronError, JararacaError

log = logging.getLogger("jararaca.dashboard")

STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def create_app(
    control_factory: Callable[[], Control],
    *,
    token: str | None = None,
    refresh_seconds: float = 5.0,
    allowed_hosts: Sequence[str] | None = None,
    secret: bytes | None = None,
) -> FastAPI:
    """The dashboard over the Control that ``control_factory`` builds (opened for the app's
    lifetime). With ``token`` every request needs it. ``allowed_hosts``: the ``Host`` header
    values accepted (without port); a dashboard without a token on a loopback address gets
    the loopback names, so another site cannot reach it by DNS rebinding."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with control_factory() as control:
            app.state.control = control
            yield

    app = FastAPI(
        title="jararaca dashboard",
        summary="See and steer an app's schedules, runs, delayed messages and dead letters.",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI loads scripts from a CDN: /openapi.json is the description
        redoc_url=None,
    )
    app.state.guard = Guard(token, secret=secret)
    app.state.refresh_seconds = refresh_seconds
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(forms.router)
    app.include_router(forms.steering)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _add_error_handlers(app)
    _add_headers(app, allowed_hosts)
    return app


def _is_api(request: Request) -> bool:
    return route_path(request).startswith("/api/")


def _error(request: Request, status_code: int, message: str) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": message}, status_code=status_code)
    control: Control | None = getattr(request.app.state, "control", None)
    if control is None:  # before the lifespan opened it: no page, just the words
        return Response(message, status_code=status_code, media_type="text/plain")
    return render(
        request,
        "error.html",
        now=control.clock.now(),
        refresh=False,
        status_code=status_code,
        message=message,
    )


def _add_error_handlers(app: FastAPI) -> None:
    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        query = urlencode({"next": exc.wanted})
        return RedirectResponse(f"{base_path(request)}/login?{query}", status_code=303)

    async def csrf_refused(request: Request, exc: Exception) -> Response:
        return _error(
            request,
            403,
            "This form's security token is missing or out of date (the dashboard may have "
            "restarted), so nothing was changed: reload the page and try again.",
        )

    async def bad_input(request: Request, exc: Exception) -> Response:
        return _error(request, 400, str(exc))

    async def unreachable(request: Request, exc: Exception) -> Response:
        return _error(request, 503, str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if _is_api(request):
            return JSONResponse(
                {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
            )
        return _error(request, exc.status_code, str(exc.detail))

    async def invalid_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if _is_api(request):
            return JSONResponse({"detail": jsonable(exc.errors())}, status_code=422)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in exc.errors()
        )
        return _error(request, 400, f"bad request: {problems}")

    async def crashed(request: Request, exc: Exception) -> Response:
        log.error("dashboard request %s failed", route_path(request), exc_info=exc)
        return _error(request, 500, "The dashboard failed on this request; its log says why.")

    handlers: dict[type[Exception], Callable[[Request, Exception], Awaitable[Response]]] = {
        LoginRequired: login_required,
        forms.CsrfRefused: csrf_refused,
        ConfigError: bad_input,
        CronError: bad_input,
        JararacaError: unreachable,
        StarletteHTTPException: http_error,
        RequestValidationError: invalid_request,
        Exception: crashed,
    }
    for exc_type, handler in handlers.items():
        app.add_exception_handler(exc_type, handler)


def jsonable(errors: Sequence[object]) -> object:
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(errors)


def _add_headers(app: FastAPI, allowed_hosts: Sequence[str] | None) -> None:
    allowed = {h.lower() for h in allowed_hosts} if allowed_hosts is not None else None

    @app.middleware("http")
    async def guard_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if allowed is not None and _host_name(request.headers.get("host", "")) not in allowed:
            return Response(
                "this dashboard answers only to the names it is bound to (e.g. "
                "127.0.0.1): start it with --token to reach it by another name",
                status_code=421,
                media_type="text/plain",
            )
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not route_path(request).startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response


def _host_name(host: str) -> str:
    """``127.0.0.1:8765`` -> ``127.0.0.1``; ``[::1]:8765`` -> ``[::1]``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if host.count(":") == 1 else host
