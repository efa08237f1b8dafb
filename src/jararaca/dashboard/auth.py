"""Who may see and steer: the dashboard's token, its session cookie and its CSRF tokens.

- Without a token (only allowed on a loopback address) anyone who reaches the port may read;
  with one, every page needs the session cookie the login form sets, and every API call the
  cookie or ``Authorization: Bearer <token>``.
- Every state change is a POST carrying the CSRF token: a hidden form field on pages, the
  ``X-CSRF-Token`` header on the API, unless the call is authenticated by its Bearer header
  (a browser never adds one by itself, so such a call cannot be forged by another site).
- Secrets are compared in constant time. The session cookie holds an HMAC of the token, never
  the token itself; the CSRF token is derived from a secret drawn when the process starts, so a
  restart invalidates forms left open (the error says to reload the page).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Literal

from fastapi import HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

SESSION_COOKIE = "jararaca_dashboard_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_MAX_AGE = 12 * 3600  # seconds: a working day, then log in again

Access = Literal["open", "bearer", "cookie"]

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="The dashboard's token (--token / JARARACA_DASHBOARD_TOKEN), when it has one.",
)


def _hmac(key: bytes, purpose: str) -> str:
    return hmac.new(key, purpose.encode("utf-8"), hashlib.sha256).hexdigest()


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison; nothing given never matches."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class Guard:
    """The dashboard's secrets: its token (or none) and the process's CSRF secret."""

    def __init__(self, token: str | None, *, secret: bytes | None = None) -> None:
        self.token = token or None
        self._secret = secret if secret is not None else secrets.token_bytes(32)

    @property
    def csrf_token(self) -> str:
        return _hmac(self._secret, "csrf")

    def session_value(self) -> str:
        """The cookie's value: an HMAC of the token, valid across restarts."""
        if self.token is None:
            raise RuntimeError("a dashboard without a token has no sessions")
        return _hmac(self.token.encode("utf-8"), "jararaca-dashboard-session")

    def token_matches(self, given: str | None) -> bool:
        return self.token is not None and same_secret(given, self.token)

    def session_valid(self, cookie: str | None) -> bool:
        return self.token is not None and same_secret(cookie, self.session_value())

    def csrf_valid(self, given: str | None) -> bool:
        return same_secret(given, self.csrf_token)

    def page_access(self, request: Request) -> bool:
        """Whether a browser request may see pages (no token, or a valid session cookie)."""
        return self.token is None or self.session_valid(request.cookies.get(SESSION_COOKIE))


def guard_of(request: Request) -> Guard:
    guard: Guard = request.app.state.guard
    return guard


class LoginRequired(Exception):  # a signal to redirect to the login, not an error
    """Raised by :func:`require_page_access`; the app answers with a redirect to the login."""

    def __init__(self, wanted: str) -> None:
        super().__init__(wanted)
        self.wanted = wanted


def route_path(request: Request) -> str:
    """The path below the root path (``--root-path`` behind a proxy), with the query."""
    path = request.scope["path"]
    root = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    query = request.url.query
    return f"{path}?{query}" if query else path


async def require_page_access(request: Request) -> None:
    """Dependency of every page: without a session, go to the login form first."""
    if not guard_of(request).page_access(request):
        raise LoginRequired(route_path(request))


async def require_api_access(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Security(bearer_scheme),  # noqa: B008
) -> Access:
    """Dependency of every API route: the token as Bearer or cookie; CSRF on cookie POSTs."""
    guard = guard_of(request)
    access: Access
    if guard.token is None:
        access = "open"
    elif credentials is not None and guard.token_matches(credentials.credentials):
        access = "bearer"
    elif guard.session_valid(request.cookies.get(SESSION_COOKIE)):
        access = "cookie"
    else:
        raise HTTPException(
            status_code=401,
            detail="this dashboard needs its token: send Authorization: Bearer <token> "
            "(the --token or JARARACA_DASHBOARD_TOKEN it was started with)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    needs_csrf = request.method == "POST" and access != "bearer"
    if needs_csrf and not guard.csrf_valid(request.headers.get(CSRF_HEADER)):
        raise HTTPException(
            status_code=403,
            detail=f"a POST without a Bearer token needs the {CSRF_HEADER} header: read "
            "its value from GET /api/csrf",
        )
    return access


def safe_local_path(wanted: str | None, default: str = "/") -> str:
    """``wanted`` if it is a path on this site (for redirects after login or a form), else
    ``default``: never another host (``//evil``, ``https://...``, ``/\\evil``)."""
    if not wanted or not wanted.startswith("/") or wanted.startswith(("//", "/\\")):
        return default
    if any(ch in wanted for ch in "\r\n\\"):
        return default
    return wanted
