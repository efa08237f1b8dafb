"""``jararaca dashboard`` refuses what it must before binding: an open address without a token,
a missing extra, a missing backend URL, each as one ``jararaca: error:`` paragraph. Without
``--host`` it binds 127.0.0.1 only, and ``--root-path`` reaches uvicorn."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner
from fastapi.testclient import TestClient

from jararaca.cli import main
from jararaca.cli.dashboard import dashboard
from jararaca.loopback import is_loopback
from tests.dashboard.helpers import free_port, wait_for

APP = "tests.fixtures.dashboard_app:app"
# What would choose the address, token or prefix behind the test's back.
DASHBOARD_VARIABLES = tuple(
    f"{prefix}DASHBOARD_{name}"
    for prefix in ("JARARACA_", "")
    for name in ("HOST", "TOKEN", "ROOT_PATH")
)


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


def without_dashboard_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in DASHBOARD_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_without_host_it_binds_127001(monkeypatch: pytest.MonkeyPatch) -> None:
    [host] = [p for p in dashboard.params if p.name == "host"]
    assert host.default == "127.0.0.1"
    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(options, app=app))
    without_dashboard_variables(monkeypatch)
    result = CliRunner().invoke(main, ["dashboard", APP, "--backend-url", "memory://"])
    assert result.exit_code == 0, result.output
    assert served["host"] == "127.0.0.1" and served["port"] == 8765
    # Without a token, what it serves answers only to the loopback names.
    with TestClient(served["app"], base_url="http://127.0.0.1:8765") as client:
        assert client.get("/schedules").status_code == 200
        assert client.get("/schedules", headers={"Host": "evil.example"}).status_code == 421


def listening_addresses(port: int) -> list[str]:
    """The local addresses with a TCP socket listening on ``port`` (from /proc/net)."""
    found = []
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, port_hex = local.partition(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)  # 32-bit words in host (little-endian) order
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.append(socket.inet_ntop(family, words))
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc/net/tcp")
def test_a_subprocess_without_host_listens_on_127001_only(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in DASHBOARD_VARIABLES}
    with (tmp_path / "dashboard.log").open("w") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "jararaca", "dashboard", APP),
                *("--backend-url", "memory://", "--port", str(port)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:

        def listening() -> list[str]:
            if process.poll() is not None:
                log_text = (tmp_path / "dashboard.log").read_text()
                raise AssertionError(f"the dashboard exited {process.returncode}: {log_text}")
            return listening_addresses(port)

        addresses = wait_for(listening, 30, "the dashboard to listen")
        assert addresses == ["127.0.0.1"]
    finally:
        process.kill()
        process.wait(timeout=10)


def test_root_path_reaches_uvicorn_without_its_trailing_slash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(options))
    without_dashboard_variables(monkeypatch)
    args = ["dashboard", APP, "--backend-url", "memory://", "--root-path"]
    result = CliRunner().invoke(main, [*args, "/jararaca/"])
    assert result.exit_code == 0, result.output
    assert served["root_path"] == "/jararaca"
    monkeypatch.setattr(uvicorn, "run", no_serving)
    result = CliRunner().invoke(main, [*args, "jararaca"])
    assert result.exit_code == 2 and "must start with '/'" in result.output
