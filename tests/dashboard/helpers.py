"""Helpers the dashboard tests share: a free port, polling for a condition, a page's CSRF
token, and whether the fixture app's action is paused."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from typing import Any

from jararaca.control import ScheduleInfo
from tests.dashboard.conftest import Store


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` until it returns something truthy (returned), or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def paused(store: Store, action: str = "yearly") -> bool:
    info = store.read(lambda c: c.describe(action, next=0))
    assert isinstance(info, ScheduleInfo)
    return bool(info.paused)
