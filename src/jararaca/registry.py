"""Finds every scheduled action and message handler of an app, with stable ids.

Beat, worker and the embedded scheduler all read the app through this module; it reads only
declarations (decorator specs), never state. It also names the queues and routing keys, so
that every process agrees on the topology.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from jararaca.brokers.base import QueueSpec
from jararaca.declarations.actions import ScheduledAction, get_scheduled_action
from jararaca.declarations.handlers import MessageHandler, get_message_handler
from jararaca.errors import ConfigError
from jararaca.microservice import Microservice

DEFAULT_GROUP = "default"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def _word(text: str) -> str:
    """A routing-key-safe word (AMQP topic words cannot hold dots or wildcards)."""
    return _UNSAFE.sub("_", text)


@dataclass(frozen=True, slots=True)
class ActionDef:
    action_id: str
    controller: type[Any]
    attribute: str
    spec: ScheduledAction

    @property
    def group(self) -> str:
        return self.spec.group or DEFAULT_GROUP

    @property
    def routing_key(self) -> str:
        kind = "action" if self.spec.exclusive else "broadcast"
        return f"jararaca.{kind}.{_word(self.group)}"

    def names(self) -> set[str]:
        return {self.action_id, self.attribute, *([self.spec.name] if self.spec.name else [])}


@dataclass(frozen=True)
class HandlerDef:
    handler_id: str
    controller: type[Any]
    attribute: str
    spec: MessageHandler

    @property
    def group(self) -> str:
        return self.spec.group or DEFAULT_GROUP

    @property
    def topic(self) -> str:
        return self.spec.message_type.topic()

    @functools.cached_property
    def retry_routing_key(self) -> str:
        """Retries of a failed message go to this handler only, not to every handler."""
        return f"jararaca.retry.{_word(self.handler_id)}"

    @property
    def queue(self) -> QueueSpec:
        return QueueSpec(f"handler.{self.handler_id}", (self.topic, self.retry_routing_key))

    def names(self) -> set[str]:
        return {self.handler_id, self.attribute, *([self.spec.name] if self.spec.name else [])}


def action_queues(actions: Iterable[ActionDef]) -> list[QueueSpec]:
    """One shared queue per group of exclusive actions; one broadcast spec per group else."""
    specs: dict[str, QueueSpec] = {}
    for action in actions:
        group = _word(action.group)
        if action.spec.exclusive:
            specs.setdefault(f"a:{group}", QueueSpec(f"actions.{group}", (action.routing_key,)))
        else:
            specs.setdefault(
                f"b:{group}", QueueSpec(f"broadcast.{group}", (action.routing_key,), broadcast=True)
            )
    return list(specs.values())


D = TypeVar("D", ActionDef, HandlerDef)


@dataclass(frozen=True)
class Registry:
    actions: tuple[ActionDef, ...]
    handlers: tuple[HandlerDef, ...]

    def select_actions(
        self, names: Iterable[str] | None = None, groups: Iterable[str] | None = None
    ) -> list[ActionDef]:
        return _select(self.actions, "action", names, groups)

    def select_handlers(
        self, names: Iterable[str] | None = None, groups: Iterable[str] | None = None
    ) -> list[HandlerDef]:
        return _select(self.handlers, "handler", names, groups)


def _select(
    items: Sequence[D], what: str, names: Iterable[str] | None, groups: Iterable[str] | None
) -> list[D]:
    chosen = list(items)
    if names is not None:
        wanted = {n.strip() for n in names if n.strip()}
        unknown = {n for n in wanted if not any(n in item.names() for item in items)}
        if unknown:
            known = ", ".join(sorted(item.spec.name or item.attribute for item in items)) or "none"
            raise ConfigError(
                f"no {what} named {', '.join(sorted(unknown))}: the app's {what}s are {known}"
            )
        chosen = [item for item in chosen if item.names() & wanted]
    if groups is not None:
        wanted_groups = {g.strip() for g in groups if g.strip()}
        chosen = [item for item in chosen if item.group in wanted_groups]
    return chosen


def check_groups(registry: Registry, groups: Iterable[str] | None) -> None:
    """Refuse group names no action or handler of the app belongs to (a typo would otherwise
    start a process that silently runs nothing)."""
    if groups is None:
        return
    known = {a.group for a in registry.actions} | {h.group for h in registry.handlers}
    unknown = sorted({g.strip() for g in groups if g.strip()} - known)
    if unknown:
        raise ConfigError(
            f"no action or handler of the app is in group(s) {', '.join(unknown)}: the app's "
            f"groups are {', '.join(sorted(known)) or 'none'}"
        )


def build_registry(app: Microservice) -> Registry:
    """Scan the app's controllers; duplicate ids raise ``ConfigError`` naming both."""
    if not isinstance(app, Microservice):
        raise ConfigError(f"expected a jararaca Microservice, got {type(app).__qualname__}")
    actions: dict[str, ActionDef] = {}
    handlers: dict[str, HandlerDef] = {}
    for controller in app.controllers:
        for attribute, member in inspect.getmembers(controller, inspect.isfunction):
            action = get_scheduled_action(member)
            if action is not None:
                action_id = action.action_id  # a new string at each call: one kept
                _add(
                    actions,
                    action_id,
                    ActionDef(action_id, controller, attribute, action),
                    controller,
                    "action",
                )
            handler = get_message_handler(member)
            if handler is not None:
                _add(
                    handlers,
                    handler.handler_id,
                    HandlerDef(handler.handler_id, controller, attribute, handler),
                    controller,
                    "handler",
                )
    return Registry(tuple(actions.values()), tuple(handlers.values()))


def _add(
    found: dict[str, Any],
    key: str,
    item: ActionDef | HandlerDef,
    controller: type[Any],
    what: str,
) -> None:
    previous = found.get(key)
    if previous is not None:
        owner = previous.controller
        other = f"{owner.__module__}.{owner.__qualname__}.{previous.attribute}"
        where = f"{controller.__module__}.{controller.__qualname__}.{item.attribute}"
        raise ConfigError(
            f"two {what}s share the id {key!r}: {other} and {where}; give one a different name="
        )
    found[key] = item
