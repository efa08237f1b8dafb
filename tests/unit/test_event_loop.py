"""JARARACA_EVENT_LOOP: which loop a service process runs on."""

from __future__ import annotations

import asyncio
import sys

import pytest
import uvloop

from jararaca.errors import ConfigError
from jararaca.event_loop import loop_factory


@pytest.mark.parametrize("value", [None, "", "auto", " UVLOOP ", "uvloop"])
def test_uvloop_is_used_when_installed_unless_asked_otherwise(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("JARARACA_EVENT_LOOP", raising=False)
    else:
        monkeypatch.setenv("JARARACA_EVENT_LOOP", value)
    assert loop_factory() is uvloop.new_event_loop


def test_asyncio_keeps_the_standard_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JARARACA_EVENT_LOOP", "asyncio")
    assert loop_factory() is None
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        assert type(runner.get_loop()).__module__.startswith("asyncio")


def test_without_uvloop_auto_falls_back_and_uvloop_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    monkeypatch.setenv("JARARACA_EVENT_LOOP", "auto")
    assert loop_factory() is None
    monkeypatch.setenv("JARARACA_EVENT_LOOP", "uvloop")
    refused = r"uvloop is not installed: pip install 'jararaca\[uvloop\]'"
    with pytest.raises(ConfigError, match=refused):
        loop_factory()


def test_an_unknown_loop_is_refused_with_the_known_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JARARACA_EVENT_LOOP", "trio")
    with pytest.raises(ConfigError, match=r"JARARACA_EVENT_LOOP='trio' .* auto, uvloop, asyncio"):
        loop_factory()
