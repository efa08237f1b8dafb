"""The dashboard in a real browser over real processes: ``jararaca beat``, ``jararaca worker``
and ``jararaca dashboard`` of tests/fixtures/dashboard_app.py on a private exchange, driven by
Playwright in Debian's Chromium the way a person uses it (buttons found by role and name).

Every effect is asserted on the backend through ``Control``, or on the files the worker writes
for each reminder it handles (``JARARACA_DASHBOARD_INBOX``), waiting with a deadline, never a
fixed sleep. Each page is photographed with real data into ``JARARACA_SCREENSHOT_DIR`` (the
committed ones in docs/dashboard/ come from ``JARARACA_SCREENSHOT_DIR=docs/dashboard``), or
into the test's temporary folder.
"""

from __future__ import annotations

import asyncio
import os
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from jararaca import Publisher, connect
from jararaca.control import Control
from jararaca.registry import build_registry
from tests.dashboard.helpers import free_port, wait_for
from tests.fixtures.dashboard_app import FAILURE, INBOX, Poison, Reminder, app, handled
from tests.integration.cluster import Cluster
from tests.services import require_rabbitmq, require_redis

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
APP = "tests.fixtures.dashboard_app:app"
TOKEN = "browser-test-token"
T = TypeVar("T")


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing: install it with apt-get install chromium (scripts/test does)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def in_own_loop(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine in a thread of its own: Playwright's sync API keeps an event loop
    running in the test's thread, where ``asyncio.run`` is refused."""

    async def run() -> T:
        return await make()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run()).result()


class Site:
    """The running cluster and dashboard, and Control on the same backend for assertions."""

    def __init__(self, cluster: Cluster, url: str, inbox: Path) -> None:
        self.cluster = cluster
        self.url = url
        self.inbox = inbox  # where the worker records each reminder it handled

    def control(self, use: Callable[[Control], Awaitable[T]]) -> T:
        async def run() -> T:
            async with Control(
                app, backend_url=self.cluster.backend_url, broker_url=self.cluster.broker_url
            ) as control:
                return await use(control)

        return in_own_loop(run)

    def runs(self, action: str, outcome: str | None = None) -> list[Any]:
        return self.control(lambda c: c.runs(action=action, outcome=outcome, limit=100))

    def publish(self, use: Callable[[Publisher], Awaitable[T]]) -> T:
        async def run() -> T:
            async with connect(self.cluster.broker_url, self.cluster.backend_url) as publisher:
                return await use(publisher)

        return in_own_loop(run)


def dashboard_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/login", timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_chromium()
    require_redis()
    require_rabbitmq()
    inbox = tmp_path_factory.mktemp("inbox")
    cluster = Cluster("dashboard", app=APP)
    try:
        cluster.start("beat")
        cluster.start("worker", env={INBOX: str(inbox)})
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cluster.spawn(
            "dashboard",
            [
                *(sys.executable, "-m", "jararaca", "dashboard", APP),
                *("--backend-url", cluster.backend_url, "--broker-url", cluster.broker_url),
                *("--port", str(port), "--token", TOKEN, "--refresh-seconds", "0"),
            ],
        )
        wait_for(lambda: dashboard_answers(url), 30, "the dashboard to answer")
        yield Site(cluster, url, inbox)
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    named = os.environ.get("JARARACA_SCREENSHOT_DIR")
    folder = Path(named) if named else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def page(site: Site, shots: Path) -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        opened = context.new_page()
        opened.set_default_timeout(15_000)
        opened.goto(f"{site.url}/schedules")
        expect(opened.get_by_role("heading", name="Log in")).to_be_visible()
        opened.screenshot(path=shots / "login.png", full_page=True)
        opened.get_by_label("Token").fill(TOKEN)
        opened.get_by_role("button", name="Log in").click()
        expect(opened.get_by_role("heading", name="Schedules")).to_be_visible()
        try:
            yield opened
        finally:
            browser.close()


def row(page: Any, action: str) -> Any:
    return page.locator(f'tr[data-action-id="{action}"]')


def test_schedules_page_has_one_row_per_declared_action_with_its_cron(
    site: Site, page: Any
) -> None:
    from playwright.sync_api import expect

    declared = {a.action_id: a.spec.cron.expr for a in build_registry(app).actions}
    assert len(declared) >= 4  # the fixture's actions: a smaller set means it lost some
    page.goto(f"{site.url}/schedules")
    rows = page.locator("tr[data-action-id]")
    expect(rows).to_have_count(len(declared))
    shown = rows.evaluate_all(
        """rows => rows.map(r => [
            r.dataset.actionId,
            r.querySelector('td[data-label="Schedule"] code').textContent,
        ])"""
    )
    assert sorted(tuple(pair) for pair in shown) == sorted(declared.items())
    for action, cron in declared.items():  # as a person reads it, too
        expect(row(page, action).get_by_role("cell").nth(1)).to_contain_text(cron)


def test_pause_stops_runs_from_the_next_slot_and_resume_brings_them_back(
    site: Site, page: Any
) -> None:
    from playwright.sync_api import expect

    wait_for(lambda: site.runs("every_second", "succeeded"), 30, "a first run of every_second")
    page.reload()
    row(page, "every_second").get_by_role("button", name="Pause").click()
    expect(row(page, "every_second").get_by_role("button", name="Resume")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Paused every_second")

    skipped = wait_for(
        lambda: sorted(r.scheduled_at for r in site.runs("every_second", "skipped_paused"))[1:],
        20,
        "two slots of every_second skipped while paused",
    )
    # Once the pause has settled (its first skipped slot), no later slot ran.
    settled = skipped[0]
    ran_after = [r for r in site.runs("every_second", "succeeded") if r.scheduled_at >= settled]
    assert ran_after == [], f"ran while paused: {[r.fire_id for r in ran_after]}"

    resumed_at = datetime.now(UTC)
    row(page, "every_second").get_by_role("button", name="Resume").click()
    expect(row(page, "every_second").get_by_role("button", name="Pause")).to_be_visible()
    wait_for(
        lambda: [r for r in site.runs("every_second", "succeeded") if r.scheduled_at > resumed_at],
        20,
        "a run of every_second after Resume",
    )


def test_trigger_runs_the_yearly_action_once(site: Site, page: Any, shots: Path) -> None:
    from playwright.sync_api import expect

    page.goto(f"{site.url}/schedules")
    row(page, "yearly").get_by_role("button", name="Trigger").click()
    expect(page.get_by_role("status")).to_contain_text("Queued fire yearly@manual-")
    [run] = wait_for(lambda: site.runs("yearly", "succeeded"), 20, "the triggered yearly run")
    assert "@manual-" in run.fire_id
    wait_for(lambda: site.runs("fails", "failed"), 20, "a failed run of fails")
    wait_for(lambda: site.runs("slow"), 20, "a run of slow")
    page.goto(f"{site.url}/schedules")
    expect(row(page, "yearly")).to_contain_text("succeeded")
    page.screenshot(path=shots / "schedules.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=shots / "schedules-phone.png", full_page=False)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_role("link", name="yearly", exact=True).click()
    expect(page.get_by_role("heading", name="Next 10 fires")).to_be_visible()
    expect(page.locator("tr[data-fire-id]")).to_have_count(1)
    page.screenshot(path=shots / "schedule-detail.png", full_page=True)


def test_runs_page_shows_the_failing_actions_error(site: Site, page: Any, shots: Path) -> None:
    from playwright.sync_api import expect

    wait_for(lambda: site.runs("fails", "failed"), 20, "a failed run of fails")
    page.goto(f"{site.url}/runs")
    page.get_by_label("Action").select_option("fails")
    page.get_by_label("Outcome").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text(FAILURE).first).to_be_visible()  # as text: the <b> is not markup
    page.goto(f"{site.url}/runs")
    page.screenshot(path=shots / "runs.png", full_page=False)

    wait_for(lambda: site.control(lambda c: c.runs(outcome="running")), 20, "a running run")
    page.goto(f"{site.url}/running")
    page.screenshot(path=shots / "running.png", full_page=True)


def test_cancel_a_delayed_message(site: Site, page: Any, shots: Path) -> None:
    from playwright.sync_api import expect

    message_id = site.publish(
        lambda p: p.delay(Reminder(text="in half a minute"), 30, idempotency_key="reminder-42")
    )
    site.publish(lambda p: p.delay(Reminder(text="in five minutes"), 300))
    page.goto(f"{site.url}/delayed")
    page.screenshot(path=shots / "delayed.png", full_page=True)
    page.get_by_label("Topic or key").fill("reminder-42")
    page.get_by_role("button", name="Search").click()
    pending = page.locator(f'tr[data-message-id="{message_id}"]')
    pending.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("status")).to_contain_text(f"Cancelled delayed message {message_id}")
    wait_for(
        lambda: message_id not in {d.message_id for d in site.control(lambda c: c.delayed())},
        10,
        "the cancelled message to leave the delayed queue",
    )


def test_a_cancelled_delayed_message_is_never_delivered(site: Site, page: Any) -> None:
    """Cancelled from the page before it is due, it is never handled: a witness published
    after the cancel, due a margin after it, is handled, and still nothing of the cancelled one
    was (the worker records every reminder it handles)."""
    from playwright.sync_api import expect

    label = uuid.uuid4().hex[:8]
    key = f"cancel-me-{label}"
    cancelled = site.publish(
        lambda p: p.delay(Reminder(text=f"cancelled {label}"), 8, idempotency_key=key)
    )
    [pending] = [d for d in site.control(lambda c: c.delayed()) if d.message_id == cancelled]
    page.goto(f"{site.url}/delayed")
    page.get_by_label("Topic or key").fill(key)
    page.get_by_role("button", name="Search").click()
    page.locator(f'tr[data-message-id="{cancelled}"]').get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("status")).to_contain_text(f"Cancelled delayed message {cancelled}")
    assert datetime.now(UTC) < pending.due_at, "the cancel came after the message was due"
    assert cancelled not in {d.message_id for d in site.control(lambda c: c.delayed())}

    margin = timedelta(seconds=3)
    witness_delay = (pending.due_at + margin - datetime.now(UTC)).total_seconds()
    witness = site.publish(lambda p: p.delay(Reminder(text=f"witness {label}"), witness_delay))
    wait_for(
        lambda: [r for r in handled(site.inbox) if r["message_id"] == witness],
        30 + witness_delay,
        "the witness reminder, due after the cancelled one, to be handled",
    )
    assert datetime.now(UTC) >= pending.due_at + margin
    delivered = [
        r for r in handled(site.inbox) if r["message_id"] == cancelled or label in r["text"]
    ]
    assert delivered == [{"message_id": witness, "text": f"witness {label}"}]


def test_purge_dead_letters_after_confirming(site: Site, page: Any, shots: Path) -> None:
    from playwright.sync_api import expect

    async def publish_poison(publisher: Publisher) -> None:
        for n in range(2):  # the worker's handler raises on each: two dead letters
            await publisher.publish(Poison(text=f"bad apple {n}"))

    site.publish(publish_poison)
    wait_for(lambda: len(site.control(lambda c: c.dead_letters())) >= 2, 20, "two dead letters")
    page.goto(f"{site.url}/dead-letters")
    expect(page.get_by_text("cannot digest bad apple 0").first).to_be_visible()
    page.screenshot(path=shots / "dead-letters.png", full_page=True)
    page.get_by_role("link", name="Purge all…").click()
    expect(page.get_by_role("button", name="Yes, purge them")).to_be_visible()
    assert len(site.control(lambda c: c.dead_letters())) >= 2  # nothing gone before confirming
    page.screenshot(path=shots / "purge-confirm.png", full_page=True)
    page.get_by_role("button", name="Yes, purge them").click()
    expect(page.get_by_role("status")).to_contain_text("Purged")
    assert site.control(lambda c: c.dead_letters()) == []


def test_processes_page_lists_the_beat_and_the_worker(site: Site, page: Any, shots: Path) -> None:
    from playwright.sync_api import expect

    wait_for(
        lambda: (
            {p.kind for p in site.control(lambda c: c.processes()) if p.alive} >= {"beat", "worker"}
        ),
        20,
        "a live beat and worker",
    )
    page.goto(f"{site.url}/processes")
    expect(page.locator("tr[data-process-id]")).to_have_count(2)
    page.screenshot(path=shots / "processes.png", full_page=True)
