"""The dashboard's security rules on the memory backend: the token guards every page and API
call, the cookie is HttpOnly and SameSite=Strict, a POST without the CSRF token changes
nothing (asserted on the backend, not on the answer), and text from errors is escaped."""

from __future__ import annotations

import hmac

import pytest
from fastapi.testclient import TestClient

from jararaca.dashboard import auth
from jararaca.dashboard.auth import CSRF_HEADER, SESSION_COOKIE
from tests.dashboard.conftest import TOKEN, DashboardFactory, Store
from tests.dashboard.helpers import csrf_of, paused

PAGES = (
    "/schedules",
    "/schedules/yearly",
    "/runs",
    "/running",
    "/delayed",
    "/dead-letters",
    "/dead-letters/purge",
    "/processes",
)
API_READS = (
    "/api/schedules",
    "/api/schedules/yearly",
    "/api/runs",
    "/api/running",
    "/api/delayed",
    "/api/dead-letters",
    "/api/processes",
    "/api/csrf",
)
STEERING_FORMS: tuple[tuple[str, dict[str, str]], ...] = (
    ("/schedules/pause", {"action": "yearly"}),
    ("/schedules/resume", {"action": "yearly"}),
    ("/schedules/trigger", {"action": "yearly"}),
    ("/schedules/backfill", {"action": "yearly", "start": "2020-01-01", "end": "2021-01-02"}),
    ("/delayed/cancel", {"message_id": "x"}),
    ("/dead-letters/replay", {}),
    ("/dead-letters/purge", {"confirm": "yes"}),
)


def log_in(client: TestClient) -> str:
    """Log in through the form; the CSRF token of the pages after it."""
    form = client.get("/login")
    response = client.post(
        "/login", data={"csrf_token": csrf_of(form.text), "token": TOKEN, "next": "/runs"}
    )
    assert response.status_code == 303 and response.headers["location"] == "/runs"
    return csrf_of(client.get("/schedules").text)


def test_with_a_token_no_page_shows_data_before_login(dashboard: DashboardFactory) -> None:
    client = dashboard(token=TOKEN)
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next="), path
        assert "yearly" not in response.text
    login = client.get("/login")
    assert login.status_code == 200 and "yearly" not in login.text


def test_with_a_token_the_api_refuses_calls_without_it_or_with_a_wrong_one(
    dashboard: DashboardFactory,
) -> None:
    client = dashboard(token=TOKEN)
    for path in API_READS:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            response = client.get(path, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.headers["www-authenticate"] == "Bearer"
            assert "yearly" not in response.text


def test_bearer_opens_the_api_and_needs_no_csrf_token(
    dashboard: DashboardFactory, store: Store
) -> None:
    client = dashboard(token=TOKEN)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    for path in API_READS:
        assert client.get(path, headers=bearer).status_code == 200, path
    response = client.post("/api/schedules/yearly/pause", json={"reason": "x"}, headers=bearer)
    assert response.status_code == 200 and response.json()["paused"] is True
    assert paused(store)


def test_a_wrong_token_on_the_login_form_sets_no_cookie(dashboard: DashboardFactory) -> None:
    client = dashboard(token=TOKEN)
    csrf = csrf_of(client.get("/login").text)
    response = client.post("/login", data={"csrf_token": csrf, "token": TOKEN + "x"})
    assert response.status_code == 401
    assert "not this dashboard" in response.text
    assert SESSION_COOKIE not in response.cookies
    assert client.get("/schedules").status_code == 303


def test_login_sets_an_httponly_strict_cookie_that_opens_pages_and_api(
    dashboard: DashboardFactory, store: Store
) -> None:
    client = dashboard(token=TOKEN)
    form = client.get("/login")
    response = client.post(
        "/login", data={"csrf_token": csrf_of(form.text), "token": TOKEN, "next": "/runs"}
    )
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert TOKEN not in cookie
    for path in PAGES:
        assert client.get(path).status_code == 200, path
    assert client.get("/api/schedules").status_code == 200
    # A POST by cookie alone needs the CSRF header, like a form needs its field.
    assert client.post("/api/schedules/yearly/pause").status_code == 403
    assert not paused(store)
    csrf = client.get("/api/csrf").json()["csrf_token"]
    assert client.post("/api/schedules/yearly/pause", headers={CSRF_HEADER: csrf}).is_success
    assert paused(store)


def test_login_never_redirects_to_another_site(dashboard: DashboardFactory) -> None:
    client = dashboard(token=TOKEN)
    csrf = csrf_of(client.get("/login").text)
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = client.post("/login", data={"csrf_token": csrf, "token": TOKEN, "next": target})
        assert response.headers["location"] == "/schedules", target


def test_a_form_post_without_the_csrf_token_changes_nothing(
    dashboard: DashboardFactory, store: Store
) -> None:
    key_id = store.delay("keep me", key="keep")
    store.dead_letter()
    client = dashboard(token=TOKEN)
    log_in(client)
    for path, data in STEERING_FORMS:
        for csrf in (None, "0" * 64):
            fields = {**data, **({"csrf_token": csrf} if csrf else {}), "message_id": key_id}
            response = client.post(path, data=fields)
            assert response.status_code == 403, path
            assert "nothing was changed" in response.text
    assert not paused(store)
    runs = store.read(lambda c: c.runs(action="yearly"))
    assert runs == []
    delayed = store.read(lambda c: c.delayed())
    assert isinstance(delayed, list) and [d.message_id for d in delayed] == [key_id]
    letters = store.read(lambda c: c.dead_letters())
    assert isinstance(letters, list) and len(letters) == 1


def test_without_a_token_pages_still_need_csrf_and_the_api_its_header(
    dashboard: DashboardFactory, store: Store
) -> None:
    client = dashboard()
    page = client.get("/schedules")
    assert page.status_code == 200 and 'data-action-id="yearly"' in page.text
    assert client.post("/schedules/pause", data={"action": "yearly"}).status_code == 403
    assert client.post("/api/schedules/yearly/pause").status_code == 403
    assert not paused(store)
    response = client.post(
        "/schedules/pause",
        data={"action": "yearly", "csrf_token": csrf_of(page.text), "back": "/schedules"},
    )
    assert response.status_code == 303
    assert paused(store)


def test_logout_forgets_the_session(dashboard: DashboardFactory) -> None:
    client = dashboard(token=TOKEN)
    csrf = log_in(client)
    response = client.post("/logout", data={"csrf_token": csrf})
    assert response.status_code == 303
    client.cookies.clear()  # the browser applies the expired cookie; the client must be told
    assert client.get("/schedules").status_code == 303


def test_messages_and_errors_are_shown_as_text(dashboard: DashboardFactory, store: Store) -> None:
    store.dead_letter(reason="<script>alert(1)</script>")
    client = dashboard()
    page = client.get("/dead-letters")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    unknown = client.get("/schedules/<img src=x>")
    assert unknown.status_code == 400 and "<img src=x>" not in unknown.text


def test_pages_carry_headers_that_forbid_framing_and_foreign_scripts(
    dashboard: DashboardFactory,
) -> None:
    response = dashboard().get("/schedules")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


def test_without_a_token_another_host_name_is_refused(dashboard: DashboardFactory) -> None:
    client = dashboard(allowed_hosts=["127.0.0.1", "localhost"])
    assert client.get("/schedules", headers={"Host": "127.0.0.1:8765"}).status_code == 200
    rebound = client.get("/schedules", headers={"Host": "evil.example:8765"})
    assert rebound.status_code == 421 and "yearly" not in rebound.text


def test_the_token_and_session_are_compared_in_constant_time(
    dashboard: DashboardFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every check of the token (Bearer, login form) and of the session cookie goes through
    ``hmac.compare_digest``, even for a guess of another length, and its answer decides."""
    real = hmac.compare_digest
    compared: list[tuple[bytes, bytes]] = []

    def spy(given: bytes, expected: bytes) -> bool:
        compared.append((given, expected))
        return real(given, expected)

    assert vars(auth)["hmac"] is hmac  # auth.py calls hmac.compare_digest: patched here
    monkeypatch.setattr(hmac, "compare_digest", spy)
    client = dashboard(token=TOKEN)
    token = TOKEN.encode()

    assert client.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"}).is_success
    assert (token, token) in compared
    compared.clear()
    for guess in ("x", TOKEN[:-1] + "?", TOKEN * 2):  # shorter, same length, longer
        response = client.get("/api/runs", headers={"Authorization": f"Bearer {guess}"})
        assert response.status_code == 401
        assert (guess.encode(), token) in compared, guess

    compared.clear()
    csrf = csrf_of(client.get("/login").text)
    response = client.post("/login", data={"csrf_token": csrf, "token": TOKEN})
    assert response.status_code == 303
    assert (token, token) in compared
    session = client.cookies[SESSION_COOKIE].encode()
    compared.clear()
    assert client.get("/schedules").status_code == 200
    assert (session, session) in compared

    # Its answer is the verdict: told "different", the right token and cookie open nothing.
    monkeypatch.setattr(hmac, "compare_digest", lambda given, expected: False)
    assert client.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 401
    assert client.get("/schedules").status_code == 303
