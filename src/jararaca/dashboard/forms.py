"""What the pages' buttons do: each a POST form carrying the CSRF token, checked before anything
changes, then a redirect back to the page it came from with a notice (post/redirect/get, so a
reload never repeats the action). Login and logout live here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from jararaca.dashboard.api import ControlDep
from jararaca.dashboard.auth import (
    CSRF_FIELD,
    SESSION_COOKIE,
    SESSION_MAX_AGE,
    guard_of,
    require_page_access,
    safe_local_path,
)
from jararaca.dashboard.rendering import base_path, read_form, render, with_notice
from jararaca.errors import ConfigError

router = APIRouter(include_in_schema=False)
steering = APIRouter(dependencies=[Depends(require_page_access)], include_in_schema=False)

TIME_HINT = "e.g. 2024-05-01T00:00 (read as UTC) or 2024-05-01T02:00:00+02:00"


class CsrfRefused(Exception):  # answered with a 403 page by the app
    """A POST form without the current CSRF token: nothing was changed."""


async def checked_form(request: Request) -> Mapping[str, str]:
    """The form's fields, once its CSRF token is the current one."""
    form = await read_form(request)
    if not guard_of(request).csrf_valid(form.get(CSRF_FIELD)):
        raise CsrfRefused()
    return form


def back_to(request: Request, form: Mapping[str, str], notice: str, subject: object = "") -> str:
    back = safe_local_path(form.get("back"), "/schedules")
    return base_path(request) + with_notice(back, notice, subject)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def form_time(label: str, value: str) -> datetime:
    """A backfill bound from a form: ISO 8601; without an offset it is UTC (the form says so)."""
    text = value.strip()
    if not text:
        raise ConfigError(f"backfill {label} is empty: give an instant, {TIME_HINT}")
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"backfill {label} {value!r} is not an ISO 8601 time: {TIME_HINT}"
        ) from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


# -- schedules ----------------------------------------------------------------------------


@steering.post("/schedules/pause")
async def pause(request: Request, control: ControlDep) -> Response:
    form = await checked_form(request)
    action = form.get("action", "")
    await control.pause(action, form.get("reason", "").strip() or None)
    return redirect(back_to(request, form, "paused", action))


@steering.post("/schedules/resume")
async def resume(request: Request, control: ControlDep) -> Response:
    form = await checked_form(request)
    action = form.get("action", "")
    was_paused = await control.resume(action)
    notice = "resumed" if was_paused else "not_paused"
    return redirect(back_to(request, form, notice, action))


@steering.post("/schedules/trigger")
async def trigger(request: Request, control: ControlDep) -> Response:
    form = await checked_form(request)
    identity = await control.trigger(form.get("action", ""))
    return redirect(back_to(request, form, "triggered", identity))


@steering.post("/schedules/backfill")
async def backfill(request: Request, control: ControlDep) -> Response:
    form = await checked_form(request)
    start = form_time("start", form.get("start", ""))
    end = form_time("end", form.get("end", ""))
    queued = await control.backfill(form.get("action", ""), start, end)
    return redirect(back_to(request, form, "backfilled", len(queued)))


# -- messages -----------------------------------------------------------------------------


@steering.post("/delayed/cancel")
async def cancel_delayed(request: Request, control: ControlDep) -> Response:
    form = await checked_form(request)
    message_id = form.get("message_id", "").strip()
    if not message_id:
        raise ConfigError("the cancel form has no message_id: reload the page and try again")
    removed = await control.cancel_delayed(message_id=message_id)
    return redirect(back_to(request, form, "cancelled" if removed else "not_found", message_id))


@steering.post("/dead-letters/replay")
async def replay_dead_letters(request: Request, control: ControlDep) -> Response:
    form = await checked_form(request)
    wanted = form.get("id", "").strip()
    replayed = await control.replay_dead_letters([wanted] if wanted else None)
    return redirect(back_to(request, form, "replayed", replayed))


@steering.post("/dead-letters/purge")
async def purge_dead_letters(request: Request, control: ControlDep) -> Response:
    form = await checked_form(request)
    if form.get("confirm") != "yes":  # only the confirmation page's button sends it
        return redirect(f"{base_path(request)}/dead-letters/purge")
    purged = await control.purge_dead_letters()
    return redirect(f"{base_path(request)}{with_notice('/dead-letters', 'purged', purged)}")


# -- session ------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/schedules") -> Response:
    guard = guard_of(request)
    if guard.token is None or guard.page_access(request):
        return redirect(base_path(request) + safe_local_path(next, "/schedules"))
    return _login_page(request, next, error=None)


def _login_page(request: Request, wanted: str, *, error: str | None) -> HTMLResponse:
    return render(
        request,
        "login.html",
        now=request.app.state.control.clock.now(),
        refresh=False,
        status_code=401 if error else 200,
        wanted=safe_local_path(wanted, "/schedules"),
        error=error,
    )


@router.post("/login")
async def login(request: Request) -> Response:
    form = await checked_form(request)
    guard = guard_of(request)
    wanted = safe_local_path(form.get("next"), "/schedules")
    if guard.token is None:
        return redirect(base_path(request) + wanted)
    if not guard.token_matches(form.get("token")):
        return _login_page(request, wanted, error="That is not this dashboard's token.")
    response = redirect(base_path(request) + wanted)
    response.set_cookie(
        SESSION_COOKIE,
        guard.session_value(),
        max_age=SESSION_MAX_AGE,
        path=base_path(request) or "/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await checked_form(request)
    response = redirect(f"{base_path(request)}/login?notice=logged_out")
    response.delete_cookie(SESSION_COOKIE, path=base_path(request) or "/")
    return response
