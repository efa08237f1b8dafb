"""The dashboard under a path prefix (``--root-path``), as behind a reverse proxy that serves it
at ``/jararaca/`` and strips the prefix: every link, form, redirect, script and stylesheet
stays under the prefix, the session cookie is scoped to it, and the forms still steer.

Once through the ASGI app with the prefix as its root path (memory store, state asserted with
Control), once through a real ``jararaca dashboard --root-path`` behind a small stripping
proxy (state asserted through the API, with the Bearer token).
"""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from html import unescape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.dashboard.conftest import TOKEN, Store
from tests.dashboard.helpers import csrf_of, free_port, paused, wait_for

PREFIX = "/jararaca"
APP = "tests.fixtures.dashboard_app:app"
PAGES = ("/schedules", "/runs", "/running", "/delayed", "/dead-letters", "/processes")


def local_urls(html: str) -> list[str]:
    """Every link, form target, script and stylesheet a page refers to."""
    return [unescape(u) for u in re.findall(r'(?:href|action|src)="([^"]*)"', html)]


def log_in_under_prefix(client: httpx.Client) -> None:
    """From a page under the prefix to the login form and back, as a browser goes."""
    refused = client.get(f"{PREFIX}/schedules")
    assert refused.status_code == 303
    assert refused.headers["location"] == f"{PREFIX}/login?next=%2Fschedules"
    form = client.get(refused.headers["location"])
    assert form.status_code == 200
    assert f'action="{PREFIX}/login"' in form.text
    response = client.post(
        f"{PREFIX}/login",
        data={"csrf_token": csrf_of(form.text), "token": TOKEN, "next": "/schedules"},
    )
    assert response.status_code == 303 and response.headers["location"] == f"{PREFIX}/schedules"
    assert f"Path={PREFIX}" in response.headers["set-cookie"]


def crawl_under_prefix(client: httpx.Client) -> dict[str, str]:
    """Every page reachable from the schedules page by its links, each answered 200, each
    referring only to URLs under the prefix; the pages by path."""
    seen: dict[str, str] = {}
    todo = [f"{PREFIX}/schedules"]
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        seen[url] = response.text
        if not response.headers["content-type"].startswith("text/html"):
            continue
        for target in local_urls(response.text):
            assert target.startswith(f"{PREFIX}/"), f"{url} refers to {target!r}"
        links = re.findall(r'<(?:a|link|script)[^>]* (?:href|src)="([^"]+)"', response.text)
        todo.extend(unescape(link).split("?")[0] for link in links)
    for page in PAGES:
        assert f"{PREFIX}{page}" in seen, f"no link to {page}"
    assert f"{PREFIX}/static/style.css" in seen
    return seen


def press(client: httpx.Client, page: str, action: str, *, row: str) -> httpx.Response:
    """Submit the form posting to ``action`` in the table row that opens with ``row``."""
    html = client.get(page).text
    start = html.index(row)
    found = re.search(
        rf'<form method="post" action="{re.escape(action)}"[^>]*>(.*?)</form>', html[start:], re.S
    )
    assert found, f"no form to {action} in {row}"
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', found.group(1)))
    return client.post(action, data={k: unescape(v) for k, v in fields.items()})


def pause_yearly_under_prefix(client: httpx.Client) -> httpx.Response:
    """Press Pause on the yearly action's row; the answer sends the browser back under the
    prefix."""
    response = press(
        client,
        f"{PREFIX}/schedules",
        f"{PREFIX}/schedules/pause",
        row='<tr data-action-id="yearly">',
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"{PREFIX}/schedules?notice=paused")
    return response


def test_pages_links_forms_and_cookie_stay_under_the_root_path(store: Store) -> None:
    store.delay("later", key="invoice-9")
    store.dead_letter()
    app = store.app(token=TOKEN, refresh_seconds=5)
    with TestClient(app, root_path=PREFIX, follow_redirects=False) as client:
        log_in_under_prefix(client)
        pages = crawl_under_prefix(client)
        assert f"{PREFIX}/schedules/yearly" in pages and f"{PREFIX}/dead-letters/purge" in pages
        assert f"{PREFIX}/static/refresh.js" in pages

        response = pause_yearly_under_prefix(client)
        assert paused(store)
        assert "Paused yearly" in client.get(response.headers["location"]).text

        logout = client.post(
            f"{PREFIX}/logout", data={"csrf_token": csrf_of(pages[f"{PREFIX}/runs"])}
        )
        assert logout.headers["location"] == f"{PREFIX}/login?notice=logged_out"
        assert f"Path={PREFIX}" in logout.headers["set-cookie"]


class StrippingProxy(ThreadingHTTPServer):
    """Serves ``PREFIX/...`` from the upstream's ``/...``, passing everything else through
    as it is (status, headers, body): what nginx's ``location /jararaca/ { proxy_pass
    http://127.0.0.1:8765/; }`` does. Anything outside the prefix is a 404."""

    def __init__(self, upstream_port: int) -> None:
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.upstream_port = upstream_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class ProxyHandler(BaseHTTPRequestHandler):
    server: StrippingProxy
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.forward()

    def do_POST(self) -> None:
        self.forward()

    def forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self.path.startswith(f"{PREFIX}/"):
            self.answer(404, [], b"not under the prefix")
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=10)
        try:
            upstream.request(self.command, self.path[len(PREFIX) :], body=body, headers=headers)
            response = upstream.getresponse()
            self.answer(response.status, response.getheaders(), response.read())
        finally:
            upstream.close()

    def answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("connection", "content-length", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        del format, args  # quiet


@pytest.fixture
def proxied_dashboard(tmp_path: Path) -> Iterator[str]:
    """A real ``jararaca dashboard --root-path /jararaca --token ...`` behind the proxy."""
    port = free_port()
    with (tmp_path / "dashboard.log").open("w") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "jararaca", "dashboard", APP, "--backend-url", "memory://"),
                *("--port", str(port), "--root-path", PREFIX, "--token", TOKEN),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    proxy = StrippingProxy(port)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()

    def answers() -> bool:
        if process.poll() is not None:
            log_text = (tmp_path / "dashboard.log").read_text()
            raise AssertionError(f"the dashboard exited {process.returncode}: {log_text}")
        try:
            return httpx.get(f"{proxy.url}{PREFIX}/login", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(answers, 30, "the dashboard to answer through the proxy")
        yield proxy.url
    finally:
        proxy.shutdown()
        proxy.server_close()
        process.kill()
        process.wait(timeout=10)


def test_a_real_dashboard_behind_a_prefix_stripping_proxy(proxied_dashboard: str) -> None:
    with httpx.Client(base_url=proxied_dashboard, timeout=10) as client:
        log_in_under_prefix(client)
        crawl_under_prefix(client)
        pause_yearly_under_prefix(client)
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        yearly = client.get(f"{PREFIX}/api/schedules/yearly", headers=bearer)
        assert yearly.status_code == 200 and yearly.json()["paused"] is True
        assert client.get(f"{PREFIX}/openapi.json").json()["paths"]
