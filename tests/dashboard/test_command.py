"""``jararaca dashboard`` refuses what it must before binding: an open address without a token,
a missing extra, a missing backend URL, each as one ``jararaca: error:`` paragraph."""

from __future__ import annotations

import subprocess
import sys

import pytest
import uvicorn
from click.testing import CliRunner

from jararaca.cli import main
from jararaca.loopback import is_loopback

APP = "tests.fixtures.dashboard_app:app"


def no_serving(*args: object, **kwargs: object) -> None:
    raise AssertionError("uvicorn.run was called: the dashboard bound an address")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "dashboard.example"])
def test_an_open_address_without_a_token_exits_before_binding(
    host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uvicorn, "run", no_serving)
    monkeypatch.delenv("JARARACA_DASHBOARD_TOKEN", raising=False)
    monkeypatch.delenv("DASHBOARD_TOKEN", raising=False)
    result = CliRunner().invoke(
        main, ["dashboard", APP, "--backend-url", "memory://", "--host", host]
    )
    assert result.exit_code == 2
    assert f"on {host!r} without a token" in result.output
    assert "JARARACA_DASHBOARD_TOKEN" in result.output
    assert result.output.count("\n") == 1  # one paragraph


def test_the_token_may_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    served: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(options))
    monkeypatch.setenv("JARARACA_DASHBOARD_TOKEN", "from-the-environment")
    result = CliRunner().invoke(
        main, ["dashboard", APP, "--backend-url", "memory://", "--host", "0.0.0.0"]
    )
    assert result.exit_code == 0, result.output
    assert served["host"] == "0.0.0.0" and served["port"] == 8765


def test_a_subprocess_on_0000_exits_non_zero_without_listening() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jararaca", "dashboard", APP, "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "refusing to serve the dashboard on '0.0.0.0'" in result.stderr


def test_without_a_backend_url_it_says_what_to_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uvicorn, "run", no_serving)
    for name in ("JARARACA_BACKEND_URL", "BACKEND_URL"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(main, ["dashboard", APP])
    assert result.exit_code == 2 and "pass --backend-url" in result.output


def test_without_the_extra_it_names_the_pip_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now raises
    result = CliRunner().invoke(main, ["dashboard", APP, "--backend-url", "memory://"])
    assert result.exit_code == 2
    assert "pip install 'jararaca[dashboard]'" in result.output


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.com"))


def test_other_commands_do_not_import_fastapi() -> None:
    code = "import sys, jararaca.cli; print('fastapi' in sys.modules, 'uvicorn' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False False"
