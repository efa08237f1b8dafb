"""How the CLI parses its options: names, environment variables, defaults, what it passes on.

The service classes are replaced by a recorder, so nothing connects or runs: these tests check
what each command hands to BeatWorker, Worker and Scheduler, and how it fails.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

import jararaca.apploader
import jararaca.scheduler.beat_worker
import jararaca.scheduler.scheduler
import jararaca.worker
from jararaca.cli import main
from jararaca.cli import options as cli_options
from jararaca.cli import services as cli_services
from jararaca.cli.options import envvars, parse_log_level, split_names
from jararaca.errors import ConfigError, JararacaError
from jararaca.observability.endpoint import MetricsConfig

APP = object()  # what the patched load_app returns
BROKER = "amqp://guest:guest@127.0.0.1:5672/?exchange=cli-test"
BACKEND = "redis://127.0.0.1:6379"

OPTION_VARIABLES = (
    "APP_PATH",
    "RELOAD",
    "SRC_DIR",
    "GRACEFUL_SHUTDOWN_SECONDS",
    "CONNECT_TIMEOUT",
    "INTERVAL",
    "BROKER_URL",
    "BACKEND_URL",
    "ACTIONS",
    "HANDLERS",
    "GROUPS",
    "LOG_LEVEL",
)


@dataclass
class Call:
    service: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass
class Recorder:
    calls: list[Call] = field(default_factory=list)
    log_levels: list[str] = field(default_factory=list)
    app_paths: list[str] = field(default_factory=list)
    raises: BaseException | None = None

    def service(self, name: str) -> Callable[..., Recorder]:
        def construct(*args: Any, **kwargs: Any) -> Recorder:
            self.calls.append(Call(name, args, kwargs))
            return self

        return construct

    def run(self) -> None:
        if self.raises is not None:
            raise self.raises

    def load_app(self, path: str) -> object:
        self.app_paths.append(path)
        return APP

    @property
    def only(self) -> Call:
        [call] = self.calls
        return call


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    rec = Recorder()
    monkeypatch.setattr(jararaca.apploader, "load_app", rec.load_app)
    monkeypatch.setattr(jararaca.scheduler.beat_worker, "BeatWorker", rec.service("beat"))
    monkeypatch.setattr(jararaca.worker, "Worker", rec.service("worker"))
    monkeypatch.setattr(jararaca.scheduler.scheduler, "Scheduler", rec.service("scheduler"))
    monkeypatch.setattr(
        cli_options, "configure_logging", lambda level, _fmt="text": rec.log_levels.append(level)
    )
    yield rec


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run ``jararaca ARGS`` in-process with none of the options' variables set but ``env``."""
    clean: dict[str, str | None] = {
        name: None for plain in OPTION_VARIABLES for name in envvars(plain)
    }
    clean.update(env or {})
    return CliRunner().invoke(main, list(args), env=clean, prog_name="jararaca")


def test_every_option_reads_a_jararaca_variable_and_the_plain_one() -> None:
    assert envvars("BROKER_URL") == ["JARARACA_BROKER_URL", "BROKER_URL"]
    commands: list[click.Command] = [main, *cli_services.COMMANDS]
    for command in commands:
        for param in command.params:
            if param.name in ("help", "version") or (
                command is not main and param.name in ("log_level", "log_format")
            ):
                continue
            assert param.envvar, f"{command.name} {param.name} reads no variable"
            [prefixed, plain] = param.envvar
            assert prefixed == f"JARARACA_{plain}", (command.name, param.name)


def test_beat_passes_its_options_to_the_beat_worker(recorder: Recorder) -> None:
    result = invoke(
        "beat",
        "app_module:app",
        "--interval",
        "0.5",
        "--broker-url",
        BROKER,
        "--backend-url",
        BACKEND,
        "--actions",
        "tick, tock",
        "--groups",
        "billing",
        "--graceful-shutdown-seconds",
        "3",
        "--connect-timeout",
        "7",
    )
    assert result.exit_code == 0, result.output
    assert recorder.app_paths == ["app_module:app"]
    call = recorder.only
    assert call.service == "beat"
    assert call.args == (APP, 0.5, BACKEND, BROKER, ["tick", "tock"])
    assert call.kwargs == {
        "groups": ["billing"],
        "graceful_shutdown_seconds": 3.0,
        "connect_timeout": 7.0,
        "metrics": None,
    }


def test_worker_passes_handlers_groups_and_actions(recorder: Recorder) -> None:
    result = invoke(
        "worker",
        "app_module:app",
        "--broker-url",
        BROKER,
        "--backend-url",
        BACKEND,
        "--handlers",
        "on_reminder",
        "--groups",
        "default,billing",
        "--actions",
        "nightly",
    )
    assert result.exit_code == 0, result.output
    call = recorder.only
    assert call.service == "worker"
    assert call.args == (APP, BROKER, BACKEND, ["on_reminder"], ["default", "billing"])
    assert call.kwargs == {
        "action_names": ["nightly"],
        "graceful_shutdown_seconds": 20.0,
        "connect_timeout": 60.0,
        "metrics": None,
    }


def test_worker_defaults_to_everything(recorder: Recorder) -> None:
    result = invoke("worker", "app_module:app", "--broker-url", BROKER, "--backend-url", BACKEND)
    assert result.exit_code == 0, result.output
    assert recorder.only.args[3:] == (None, None)
    assert recorder.only.kwargs["action_names"] is None


def test_scheduler_defaults_to_memory_and_takes_groups(recorder: Recorder) -> None:
    result = invoke("scheduler", "app_module:app", "--groups", "reports")
    assert result.exit_code == 0, result.output
    call = recorder.only
    assert call.service == "scheduler"
    assert call.args == (APP, 1.0, "memory://", None)
    assert call.kwargs == {
        "groups": ["reports"],
        "graceful_shutdown_seconds": 20.0,
        "connect_timeout": 60.0,
        "metrics": None,
    }


def test_scheduler_takes_a_backend_url(recorder: Recorder) -> None:
    result = invoke("scheduler", "app_module:app", "--backend-url", BACKEND, "--actions", "a")
    assert result.exit_code == 0, result.output
    assert recorder.only.args == (APP, 1.0, BACKEND, ["a"])


@pytest.mark.parametrize("prefix", ["JARARACA_", ""])
def test_options_come_from_either_variable(recorder: Recorder, prefix: str) -> None:
    env = {
        f"{prefix}APP_PATH": "env_module:app",
        f"{prefix}INTERVAL": "2",
        f"{prefix}BROKER_URL": BROKER,
        f"{prefix}BACKEND_URL": BACKEND,
        f"{prefix}ACTIONS": "a,b",
        f"{prefix}GROUPS": "g1,g2",
        f"{prefix}GRACEFUL_SHUTDOWN_SECONDS": "4",
        f"{prefix}CONNECT_TIMEOUT": "5",
        f"{prefix}LOG_LEVEL": "debug",
        f"{prefix}METRICS_PORT": "9123",
    }
    result = invoke("beat", env=env)
    assert result.exit_code == 0, result.output
    assert recorder.app_paths == ["env_module:app"]
    call = recorder.only
    assert call.args == (APP, 2.0, BACKEND, BROKER, ["a", "b"])
    assert call.kwargs == {
        "groups": ["g1", "g2"],
        "graceful_shutdown_seconds": 4.0,
        "connect_timeout": 5.0,
        "metrics": MetricsConfig(port=9123),
    }
    assert recorder.log_levels == ["DEBUG"]


def test_metrics_beyond_loopback_need_a_token(recorder: Recorder) -> None:
    args = ["worker", "app_module:app", "--broker-url", BROKER, "--backend-url", BACKEND]
    result = invoke(*args, "--metrics-port", "9100", "--metrics-host", "0.0.0.0")
    assert result.exit_code == 2
    assert "'0.0.0.0' without a token" in result.output
    assert recorder.calls == []
    token = ["--metrics-token", "s3cret"]
    result = invoke(*args, "--metrics-port", "9100", "--metrics-host", "0.0.0.0", *token)
    assert result.exit_code == 0, result.output
    assert recorder.only.kwargs["metrics"] == MetricsConfig(9100, "0.0.0.0", "s3cret")


def test_the_jararaca_variable_wins_over_the_plain_one(recorder: Recorder) -> None:
    result = invoke(
        "worker",
        "app_module:app",
        env={
            "JARARACA_BROKER_URL": BROKER,
            "BROKER_URL": "amqp://other/",
            "BACKEND_URL": BACKEND,
            "JARARACA_GROUPS": "billing",
            "GROUPS": "other",
            "HANDLERS": "h",
        },
    )
    assert result.exit_code == 0, result.output
    assert recorder.only.args == (APP, BROKER, BACKEND, ["h"], ["billing"])


def test_the_command_line_wins_over_the_variables(recorder: Recorder) -> None:
    result = invoke(
        "scheduler",
        "app_module:app",
        "--interval",
        "3",
        env={"JARARACA_INTERVAL": "9", "INTERVAL": "8", "JARARACA_APP_PATH": "other:app"},
    )
    assert result.exit_code == 0, result.output
    assert recorder.app_paths == ["app_module:app"]
    assert recorder.only.args[1] == 3.0


@pytest.mark.parametrize(
    ("args", "env", "level"),
    [
        ([], {}, "INFO"),
        (["--log-level", "debug", "scheduler", "m:app"], {}, "DEBUG"),
        (["scheduler", "m:app", "--log-level", "debug"], {}, "DEBUG"),
        (["scheduler", "m:app", "--log-level", "Warn"], {}, "WARNING"),
        (["--log-level", "ERROR", "scheduler", "m:app"], {}, "ERROR"),
        (["--log-level", "debug", "scheduler", "m:app", "--log-level", "error"], {}, "ERROR"),
        ([], {"JARARACA_LOG_LEVEL": "warn"}, "WARNING"),
        ([], {"LOG_LEVEL": "Debug"}, "DEBUG"),
        ([], {"JARARACA_LOG_LEVEL": "error", "LOG_LEVEL": "debug"}, "ERROR"),
        (["--log-level", "debug", "scheduler", "m:app"], {"LOG_LEVEL": "error"}, "DEBUG"),
        (["scheduler", "m:app", "--log-level", "debug"], {"LOG_LEVEL": "error"}, "DEBUG"),
    ],
)
def test_log_level_before_or_after_the_command(
    recorder: Recorder, args: list[str], env: dict[str, str], level: str
) -> None:
    result = invoke(*(args or ["scheduler", "m:app"]), env=env)
    assert result.exit_code == 0, result.output
    assert recorder.log_levels == [level]


@pytest.mark.parametrize(
    "args",
    [
        ["--log-level", "loud", "scheduler", "m:app"],
        ["scheduler", "m:app", "--log-level", "loud"],
    ],
)
def test_a_bad_log_level_is_a_usage_error(recorder: Recorder, args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert "'loud' is not a log level" in result.output
    assert recorder.calls == []


def test_parse_log_level() -> None:
    assert parse_log_level(" warn ") == "WARNING"
    assert parse_log_level("critical") == "CRITICAL"
    with pytest.raises(click.BadParameter):
        parse_log_level("verbose")


def test_version_prints_the_installed_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0, result.output
    assert result.output == f"jararaca {version('jararaca')}\n"


def test_help_lists_both_variables() -> None:
    result = invoke("beat", "--help")
    assert result.exit_code == 0, result.output
    for name in ("JARARACA_BROKER_URL", "JARARACA_GROUPS", "JARARACA_CONNECT_TIMEOUT"):
        assert name in result.output
    assert "--log-level" in result.output


def test_split_names() -> None:
    assert split_names(None) is None
    assert split_names("") is None
    assert split_names(" , ,") is None
    assert split_names("a, b ,,c") == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("bad thing: fix it"), 2),
        (JararacaError("Redis unreachable: start it"), 1),
    ],
)
def test_errors_are_one_line_and_an_exit_code(
    recorder: Recorder, error: JararacaError, code: int
) -> None:
    recorder.raises = error
    result = invoke("scheduler", "m:app")
    assert result.exit_code == code
    assert result.output == f"jararaca: error: {error}\n"


def test_a_missing_distributed_extra_names_the_pip_command(recorder: Recorder) -> None:
    recorder.raises = ModuleNotFoundError("No module named 'aio_pika'", name="aio_pika")
    result = invoke("beat", "m:app", "--broker-url", BROKER, "--backend-url", BACKEND)
    assert result.exit_code == 2
    [line] = result.output.splitlines()
    assert line.startswith("jararaca: error: ")
    assert "pip install 'jararaca[distributed]'" in line


def test_other_missing_modules_are_not_hidden(recorder: Recorder) -> None:
    recorder.raises = ModuleNotFoundError("No module named 'numpy'", name="numpy")
    result = invoke("scheduler", "m:app")
    assert result.exit_code == 1
    assert isinstance(result.exception, ModuleNotFoundError)


def test_reload_without_watchfiles_names_the_extra(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "watchfiles", None)  # makes `import watchfiles` fail
    result = invoke("scheduler", "m:app", "--reload", "--src-dir", "src")
    assert result.exit_code == 2
    [line] = result.output.splitlines()
    assert "pip install 'jararaca[reload]'" in line
    assert recorder.calls == []


def test_reload_runs_the_command_again_without_reload(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    watchfiles = pytest.importorskip("watchfiles")
    runs: list[dict[str, Any]] = []

    def run_process(path: str, **kwargs: Any) -> None:
        reload_env = {name: os.environ.get(name) for name in envvars("RELOAD")}
        runs.append({"path": path, "env": reload_env, **kwargs})

    monkeypatch.setattr(watchfiles, "run_process", run_process)
    argv = ["scheduler", "m:app", "--reload", "--src-dir", str(tmp_path), "--log-level", "warn"]
    monkeypatch.setattr(sys, "argv", ["jararaca", *argv])
    result = invoke(*argv, env={"RELOAD": "true"})
    assert result.exit_code == 0, result.output
    [run] = runs
    assert run["path"] == str(tmp_path)
    assert run["target"].endswith(
        f"-m jararaca scheduler m:app --src-dir {tmp_path} --log-level warn"
    )
    # The child must not watch again, whichever of the two variables the user set.
    assert run["env"] == {"JARARACA_RELOAD": "false", "RELOAD": "false"}
    assert recorder.calls == []
