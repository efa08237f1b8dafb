"""The pages and the API on the memory backend: what they show, what their buttons do (asserted
on the backend through Control), and bad input answered with the Control's message and a 4xx,
never a 500."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from jararaca.control import DelayedInfo, ScheduleInfo
from jararaca.testing import TestScheduler
from tests.dashboard.conftest import DashboardFactory, Store
from tests.dashboard.helpers import csrf_of
from tests.fixtures.dashboard_app import app


def post_form(client: TestClient, path: str, **fields: str) -> object:
    csrf = csrf_of(client.get("/schedules").text)
    return client.post(path, data={"csrf_token": csrf, **fields})


def row(html: str, action: str) -> str:
    found = re.search(rf'<tr data-action-id="{re.escape(action)}">(.*?)</tr>', html, re.S)
    assert found, f"no row for {action}"
    return found.group(1)


def test_schedules_page_lists_every_action_with_its_buttons(dashboard: DashboardFactory) -> None:
    html = dashboard().get("/schedules").text
    for action in ("every_second", "yearly", "fails"):
        assert f'<tr data-action-id="{action}">' in html
    yearly = row(html, "yearly")
    assert "every year on 1 January at 00:00" in yearly and "0 0 1 1 *" in yearly
    assert ">Pause</button>" in yearly and ">Trigger</button>" in yearly
    assert ">Resume</button>" not in yearly
    assert "no runs yet" in yearly
    assert "every second" in row(html, "every_second")


def test_pause_resume_and_trigger_forms_steer_through_control(
    dashboard: DashboardFactory, store: Store
) -> None:
    client = dashboard()
    response = post_form(client, "/schedules/pause", action="yearly", back="/schedules")
    assert response.status_code == 303  # type: ignore[attr-defined]
    page = client.get(response.headers["location"]).text  # type: ignore[attr-defined]
    assert "Paused yearly" in page
    assert ">Resume</button>" in row(page, "yearly") and ">Pause</button>" not in row(
        page, "yearly"
    )
    post_form(client, "/schedules/resume", action="yearly")
    info = store.read(lambda c: c.describe("yearly"))
    assert isinstance(info, ScheduleInfo) and info.paused is False
    response = post_form(client, "/schedules/trigger", action="yearly")
    location = response.headers["location"]  # type: ignore[attr-defined]
    assert "notice=triggered" in location and "yearly%40manual-" in location


def test_detail_page_shows_ten_fires_and_no_runs_yet(dashboard: DashboardFactory) -> None:
    html = dashboard().get("/schedules/yearly").text
    assert "Next 10 fires" in html
    assert html.count("<li><time") == 10
    assert "No runs yet." in html
    assert 'name="start"' in html and 'name="end"' in html


def test_backfill_form_queues_the_slots(dashboard: DashboardFactory, store: Store) -> None:
    client = dashboard()
    year = datetime.now(UTC).year
    response = post_form(
        client,
        "/schedules/backfill",
        action="yearly",
        start=f"{year - 3}-01-01T00:00",
        end=f"{year - 1}-01-01T00:00:01+00:00",
        back="/schedules/yearly",
    )
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert "notice=backfilled&subject=3" in response.headers["location"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"action": "nope", "start": "2020-01-01", "end": "2020-01-02"}, "no action named 'nope'"),
        ({"action": "yearly", "start": "yesterday", "end": "2020-01-02"}, "not an ISO 8601 time"),
        ({"action": "yearly", "start": "", "end": "2020-01-02"}, "start is empty"),
        ({"action": "yearly", "start": "2020-01-02", "end": "2020-01-01"}, "is not after start"),
        ({"action": "yearly", "start": "2020-01-01", "end": "2999-01-01"}, "in the future"),
        ({"action": "every_second", "start": "2020-01-01", "end": "2020-02-01"}, "10,000 slots"),
    ],
)
def test_bad_backfill_input_is_an_error_page_with_the_reason(
    dashboard: DashboardFactory, fields: dict[str, str], expected: str
) -> None:
    response = post_form(dashboard(), "/schedules/backfill", **fields)
    assert response.status_code == 400  # type: ignore[attr-defined]
    text = response.text  # type: ignore[attr-defined]
    assert expected in text.replace("&#39;", "'") and "Traceback" not in text


def test_unknown_actions_are_4xx_with_the_known_names(dashboard: DashboardFactory) -> None:
    client = dashboard()
    page = client.get("/schedules/nope")
    assert page.status_code == 400 and "every_second" in page.text
    for method, path in (
        ("GET", "/api/schedules/nope"),
        ("POST", "/api/schedules/nope/pause"),
        ("POST", "/api/schedules/nope/trigger"),
        ("GET", "/api/runs?action=nope"),
    ):
        csrf = client.get("/api/csrf").json()["csrf_token"]
        response = client.request(method, path, headers={"X-CSRF-Token": csrf})
        assert response.status_code in (400, 404), path
        assert "no action named 'nope'" in response.json()["detail"]
    assert client.get("/api/runs?outcome=bogus").status_code == 400
    assert client.get("/runs?outcome=bogus").status_code == 400
    assert client.get("/api/runs?limit=0").status_code == 422


def test_api_backfill_refuses_too_many_slots_and_naive_times(dashboard: DashboardFactory) -> None:
    client = dashboard()
    csrf = {"X-CSRF-Token": client.get("/api/csrf").json()["csrf_token"]}
    start = datetime(2020, 1, 1, tzinfo=UTC)
    too_long = {"start": start.isoformat(), "end": (start + timedelta(days=1)).isoformat()}
    response = client.post("/api/schedules/every_second/backfill", json=too_long, headers=csrf)
    assert response.status_code == 400 and "10,000" in response.json()["detail"]
    naive = {"start": "2020-01-01T00:00:00", "end": "2020-01-02T00:00:00"}
    response = client.post("/api/schedules/yearly/backfill", json=naive, headers=csrf)
    assert response.status_code == 400 and "no time zone" in response.json()["detail"]
    response = client.post(
        "/api/schedules/yearly/backfill",
        json={"start": "2019-12-31T00:00:00Z", "end": "2020-01-02T00:00:00Z"},
        headers=csrf,
    )
    assert response.json() == {"fire_ids": ["yearly@1577836800000"]}


def test_empty_states_say_so(dashboard: DashboardFactory) -> None:
    client = dashboard()
    assert "No runs yet." in client.get("/runs").text
    assert "Nothing is running right now." in client.get("/running").text
    assert "No delayed message is pending." in client.get("/delayed").text
    assert "No dead letters" in client.get("/dead-letters").text
    assert "No beat or worker" in client.get("/processes").text


def test_delayed_page_searches_and_cancels(dashboard: DashboardFactory, store: Store) -> None:
    first = store.delay("one", key="invoice-17")
    second = store.delay("two")
    client = dashboard()
    html = client.get("/delayed").text
    assert first in html and second in html and "invoice-17" in html
    searched = client.get("/delayed?q=invoice").text
    assert first in searched and second not in searched
    assert "No pending delayed message matches" in client.get("/delayed?q=zzz").text
    api = client.get("/api/delayed?key=invoice").json()
    assert [d["message_id"] for d in api] == [first]
    response = post_form(client, "/delayed/cancel", message_id=first, back="/delayed?q=invoice")
    location = response.headers["location"]  # type: ignore[attr-defined]
    assert location.startswith("/delayed?q=invoice&notice=cancelled")
    left = store.read(lambda c: c.delayed())
    assert isinstance(left, list) and [
        d.message_id for d in left if isinstance(d, DelayedInfo)
    ] == [second]


def test_purge_asks_for_confirmation_first(dashboard: DashboardFactory, store: Store) -> None:
    store.dead_letter()
    store.dead_letter()
    client = dashboard()
    html = client.get("/dead-letters").text
    assert "handler raised ValueError" in html and "Purge all" in html
    assert "drops <strong>2</strong>" in client.get("/dead-letters/purge").text
    unconfirmed = post_form(client, "/dead-letters/purge")
    assert unconfirmed.headers["location"] == "/dead-letters/purge"  # type: ignore[attr-defined]
    assert len(store.read(lambda c: c.dead_letters())) == 2  # type: ignore[arg-type]
    confirmed = post_form(client, "/dead-letters/purge", confirm="yes")
    assert "notice=purged&subject=2" in confirmed.headers["location"]  # type: ignore[attr-defined]
    assert store.read(lambda c: c.dead_letters()) == []


def test_dead_letters_without_a_broker_url_say_what_to_pass(dashboard: DashboardFactory) -> None:
    client = dashboard(broker=False)
    page = client.get("/dead-letters")
    assert page.status_code == 200 and "pass broker_url=" in page.text
    assert client.get("/api/dead-letters").status_code == 400


def test_runs_page_shows_errors_lateness_and_filters(
    dashboard: DashboardFactory, store: Store
) -> None:
    async def run_fails_once() -> None:
        start = datetime(2031, 3, 4, 10, 0, 1, tzinfo=UTC)
        async with TestScheduler(app, start=start, store=store.name, actions=["fails"]) as beat:
            await beat.advance(timedelta(seconds=2))

    asyncio.run(run_fails_once())
    client = dashboard()
    html = client.get("/runs?action=fails&outcome=failed").text
    assert '<option value="fails" selected>' in html and "failed</span>" in html
    assert "disk &lt;b&gt;full&lt;/b&gt; on purpose" in html
    assert "No runs yet." in client.get("/runs?action=yearly").text
    [run] = client.get("/api/runs?outcome=failed").json()
    assert run["action_id"] == "fails" and "on purpose" in run["error"]
    assert run["lateness_seconds"] is not None and run["duration_seconds"] is not None
    last = row(client.get("/schedules").text, "fails")
    assert "failed</span>" in last


def test_openapi_describes_the_api_with_the_control_models(dashboard: DashboardFactory) -> None:
    spec = dashboard().get("/openapi.json").json()
    assert {"ScheduleInfo", "RunInfo", "DelayedInfo", "DeadLetterInfo", "ProcessInfo"} <= set(
        spec["components"]["schemas"]
    )
    assert all(path.startswith("/api/") for path in spec["paths"])
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
