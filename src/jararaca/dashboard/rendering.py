"""Turning a page's data into HTML: the Jinja2 environment (autoescape on: every message, error
and id is shown as text, never as markup), what every page gets (navigation, CSRF token,
``now``), the notices shown after a form, and reading a form's fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from jararaca.dashboard.auth import CSRF_FIELD, guard_of
from jararaca.dashboard.humanize import cron_in_words, relative, seconds, utc

NAVIGATION = (
    ("schedules", "Schedules", "/schedules"),
    ("runs", "Runs", "/runs"),
    ("running", "Running now", "/running"),
    ("delayed", "Delayed messages", "/delayed"),
    ("dead_letters", "Dead letters", "/dead-letters"),
    ("processes", "Processes", "/processes"),
)

# What a form's redirect says, by the code in its ``notice`` query parameter: fixed wording,
# so a crafted link can only show these sentences (with ``subject`` as escaped text).
NOTICES = {
    "paused": "Paused {subject}: it does not fire from its next slot on.",
    "resumed": "Resumed {subject}: it fires again from its next slot.",
    "not_paused": "{subject} was not paused.",
    "triggered": "Queued fire {subject}: a beat dispatches it at once.",
    "backfilled": "Queued {subject} fire(s) for the backfill window.",
    "cancelled": "Cancelled delayed message {subject}.",
    "not_found": "Delayed message {subject} was no longer pending (already due or cancelled).",
    "replayed": "Replayed {subject} dead letter(s).",
    "purged": "Purged {subject} dead letter(s).",
    "logged_out": "Logged out.",
}

_environment = jinja2.Environment(
    loader=jinja2.PackageLoader("jararaca.dashboard", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def base_path(request: Request) -> str:
    """Where the dashboard is mounted (``--root-path``), without a trailing slash."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def notice_text(request: Request) -> str | None:
    code = request.query_params.get("notice")
    template = NOTICES.get(code or "")
    if template is None:
        return None
    return template.format(subject=request.query_params.get("subject", ""))


def render(
    request: Request,
    template: str,
    *,
    now: datetime,
    page: str | None = None,
    status_code: int = 200,
    refresh: bool = True,
    **context: Any,
) -> HTMLResponse:
    """``template`` with what every page shows; ``refresh=False`` for pages holding a form a
    person is filling in, which a reload would wipe."""
    guard = guard_of(request)
    html = _environment.get_template(template).render(
        base=base_path(request),
        navigation=NAVIGATION,
        page=page,
        csrf_field=CSRF_FIELD,
        csrf_token=guard.csrf_token,
        logged_in=guard.token is not None and guard.page_access(request),
        notice=notice_text(request),
        refresh_seconds=request.app.state.refresh_seconds if refresh else 0,
        here=_here(request),
        relative=lambda at: relative(at, now),
        utc=utc,
        seconds=seconds,
        cron_in_words=cron_in_words,
        **context,
    )
    return HTMLResponse(html, status_code=status_code)


def _here(request: Request) -> str:
    """This page's path and query without the notice: where a form sends the browser back."""
    query = [
        (key, value)
        for key, value in request.query_params.multi_items()
        if key not in ("notice", "subject")
    ]
    path = request.scope["path"]
    root = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    return f"{path}?{urlencode(query)}" if query else path


def with_notice(back: str, notice: str, subject: object = "") -> str:
    """``back`` (a local path with a query) with the notice to show there."""
    parts = urlsplit(back)
    query = [(k, v) for k, vs in parse_qs(parts.query).items() for v in vs]
    query = [(k, v) for k, v in query if k not in ("notice", "subject")]
    query += [("notice", notice), ("subject", str(subject))]
    return f"{parts.path}?{urlencode(query)}"


async def read_form(request: Request) -> Mapping[str, str]:
    """An ``application/x-www-form-urlencoded`` body as its first value per field (the forms
    here have no repeated field); parsed here, so the extra needs no multipart library."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {key: values[0] for key, values in parse_qs(body, keep_blank_values=True).items()}
