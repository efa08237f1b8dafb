"""Bad declarations fail at import or app build time with an error naming the culprit."""

from __future__ import annotations

import functools
import inspect
import re
from typing import Any

import pytest

from jararaca import (
    ConfigError,
    CronError,
    Message,
    MessageBusController,
    MessageHandler,
    Microservice,
    ProviderSpec,
    ScheduledAction,
)
from jararaca.declarations._signatures import positional_params
from jararaca.microservice import Container
from jararaca.registry import build_registry


class Note(Message):
    MESSAGE_TOPIC = "note.added"
    text: str


def test_a_bad_cron_names_the_action_and_the_field() -> None:
    with pytest.raises(CronError) as caught:

        class Tasks:
            @ScheduledAction("0 25 * * *")
            async def nightly(self) -> None: ...

    text = str(caught.value)
    assert "Tasks.nightly" in text
    assert "hour" in text
    assert "'0 25 * * *'" in text


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(CronError, match="Mars/Olympus"):

        class Tasks:
            @ScheduledAction("0 * * * *", tz="Mars/Olympus")
            async def hourly(self) -> None: ...


def test_a_sync_function_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"Tasks\.sync_job.*async def"):

        class Tasks:
            @ScheduledAction("* * * * *")
            def sync_job(self) -> None: ...


def test_an_action_with_two_parameters_is_refused() -> None:
    with pytest.raises(ConfigError, match="takes no argument besides self, or one"):

        class Tasks:
            @ScheduledAction("* * * * *")
            async def job(self, a: int, b: int) -> None: ...


async def _plain(self: Any, run: Any) -> None: ...


async def _positional_only(self: Any, /, run: Any) -> None: ...


async def _with_locals(self: Any) -> None:
    unused = 1
    del unused


async def _not_self(this: Any, run: Any) -> None: ...


async def _nothing() -> None: ...


async def _only_star(*args: Any) -> None: ...


async def _star(self: Any, *args: Any) -> None: ...


async def _keyword_only(self: Any, *, run: Any) -> None: ...


async def _star_star(self: Any, **options: Any) -> None: ...


@functools.wraps(_plain)
async def _wrapper(*args: Any, **kwargs: Any) -> None: ...


async def _with_signature(*args: Any) -> None: ...


_with_signature.__signature__ = inspect.signature(_plain)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("func", "expected"),
    [
        (_plain, ("run",)),
        (_positional_only, ("run",)),
        (_with_locals, ()),
        (_wrapper, ("run",)),  # read through __wrapped__, as inspect.signature does
        (_with_signature, ("run",)),
        (_not_self, "first parameter 'self'"),
        (_nothing, "first parameter 'self'"),
        (_only_star, "first parameter 'self'"),
        (_star, "parameter 'args' must be a plain positional parameter"),
        (_keyword_only, "parameter 'run' must be a plain positional parameter"),
        (_star_star, "parameter 'options' must be a plain positional parameter"),
    ],
)
def test_method_shapes_read_from_code_or_signature(func: Any, expected: Any) -> None:
    if isinstance(expected, tuple):
        assert positional_params(func, "ScheduledAction") == expected
    else:
        with pytest.raises(ConfigError, match=re.escape(expected)):
            positional_params(func, "ScheduledAction")


def test_a_handler_without_its_message_parameter_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"\(self, message\)"):

        class Handlers:
            @MessageHandler(Note)
            async def on_note(self) -> None: ...


def test_a_handler_needs_a_message_class_with_a_topic() -> None:
    class NoTopic(Message):
        x: int

    with pytest.raises(ConfigError, match="MESSAGE_TOPIC"):
        MessageHandler(NoTopic)
    with pytest.raises(ConfigError, match="Message subclass"):
        MessageHandler(dict)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": -5}, "timeout"),
        ({"catch_up": "some"}, "catch_up"),
        ({"catch_up_window": -1}, "catch_up_window"),
        ({"jitter": -1}, "jitter"),
        ({"name": ""}, "name"),
        ({"group": "a.b"}, "group"),
        ({"group": ""}, "group"),
        ({"exception_handler": 42}, "exception_handler"),
    ],
)
def test_bad_options_are_refused_naming_the_option(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        ScheduledAction("* * * * *", **kwargs)


def test_two_actions_with_one_name_fail_at_app_build_naming_both() -> None:
    class One:
        @ScheduledAction("* * * * *", name="report")
        async def a(self) -> None: ...

    class Two:
        @ScheduledAction("0 * * * *", name="report")
        async def b(self) -> None: ...

    with pytest.raises(ConfigError, match=r"'report'.*One\.a.*Two\.b"):
        build_registry(Microservice(controllers=[One, Two]))


def test_registry_finds_actions_and_handlers_with_stable_ids() -> None:
    @MessageBusController
    class Mixed:
        @ScheduledAction("* * * * *")
        async def tick(self) -> None: ...

        @ScheduledAction("0 * * * *", name="hourly", group="reports")
        async def hourly(self) -> None: ...

        @MessageHandler(Note)
        async def on_note(self, note: Note) -> None: ...

    registry = build_registry(Microservice(controllers=[Mixed]))
    ids = sorted(a.action_id for a in registry.actions)
    prefix = f"{__name__}.test_registry_finds_actions_and_handlers_with_stable_ids.<locals>.Mixed"
    assert ids == ["hourly", f"{prefix}.tick"]
    assert [h.handler_id for h in registry.handlers] == [f"{prefix}.on_note"]
    assert [a.action_id for a in registry.select_actions(groups=["reports"])] == ["hourly"]
    with pytest.raises(ConfigError, match="no action named nope"):
        registry.select_actions(["nope"])


def test_controllers_must_be_classes() -> None:
    class Tasks: ...

    with pytest.raises(ConfigError, match="must be classes"):
        Microservice(controllers=[Tasks()])  # type: ignore[list-item]


# -- dependency injection ------------------------------------------------------------------


class Settings:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn


class Repository:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings


class Clocky:
    pass


class Service:
    def __init__(self, repository: Repository, clocky: Clocky, retries: int = 3) -> None:
        self.repository = repository
        self.clocky = clocky
        self.retries = retries


def make_repository(settings: Settings) -> Repository:
    return Repository(settings)


def test_the_container_resolves_values_factories_and_classes_once() -> None:
    container = Container(
        [
            ProviderSpec(provide=Settings, use_value=Settings("redis://x")),
            ProviderSpec(provide=Repository, use_factory=make_repository),
            Clocky,
        ]
    )
    service = container.get(Service)
    assert service.repository.settings.dsn == "redis://x"
    assert service.retries == 3
    assert container.get(Service) is service
    assert container.get(Repository) is service.repository


def test_provider_spec_needs_exactly_one_source() -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        ProviderSpec(provide=Settings)
    with pytest.raises(ConfigError, match="exactly one"):
        ProviderSpec(provide=Settings, use_value=1, use_class=Settings)


def test_an_unresolvable_parameter_names_the_class_and_parameter() -> None:
    class Needy:
        def __init__(self, thing) -> None:  # type: ignore[no-untyped-def]
            self.thing = thing

    with pytest.raises(ConfigError, match=r"Needy.*'thing'"):
        Container().get(Needy)
