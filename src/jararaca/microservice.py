"""``Microservice``, ``ProviderSpec`` and the small dependency-injection container.

Controllers are built by the container: each constructor parameter is resolved by its type
annotation from the app's providers (a class, or a ``ProviderSpec``). Instances are singletons
per container, so a beat, a worker or an embedded scheduler builds each controller once.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast, get_type_hints

from jararaca.errors import ConfigError

T = TypeVar("T")
_UNSET: Any = object()


@dataclass(frozen=True)
class ProviderSpec:
    """How to obtain an instance of ``provide``: exactly one of ``use_value``,
    ``use_factory`` (a callable whose typed parameters are injected) or ``use_class``."""

    provide: Any
    use_value: Any = _UNSET
    use_factory: Callable[..., Any] | None = None
    use_class: type[Any] | None = None

    def __post_init__(self) -> None:
        given = [
            self.use_value is not _UNSET,
            self.use_factory is not None,
            self.use_class is not None,
        ]
        if sum(given) != 1:
            raise ConfigError(
                f"ProviderSpec for {_name(self.provide)} needs exactly one of use_value, "
                f"use_factory or use_class (got {sum(given)})"
            )


@dataclass
class Microservice:
    """An app: its controllers (scanned for actions and handlers) and providers."""

    name: str | None = None
    controllers: Sequence[type[Any]] = field(default_factory=list)
    providers: Sequence[type[Any] | ProviderSpec] = field(default_factory=list)

    def __post_init__(self) -> None:
        for controller in self.controllers:
            if not inspect.isclass(controller):
                raise ConfigError(
                    f"Microservice controllers must be classes, got {controller!r}: "
                    "pass the class itself, not an instance"
                )
        for provider in self.providers:
            if not (inspect.isclass(provider) or isinstance(provider, ProviderSpec)):
                raise ConfigError(
                    f"Microservice providers must be classes or ProviderSpec, got {provider!r}"
                )


def _name(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or repr(obj)


class Container:
    """Resolves and caches instances for one runtime."""

    def __init__(self, providers: Sequence[type[Any] | ProviderSpec] = ()) -> None:
        self._specs: dict[Any, ProviderSpec] = {}
        for provider in providers:
            spec = (
                provider
                if isinstance(provider, ProviderSpec)
                else ProviderSpec(provide=provider, use_class=provider)
            )
            self._specs[spec.provide] = spec
        self._instances: dict[Any, Any] = {}
        self._resolving: list[Any] = []

    def get(self, key: type[T]) -> T:
        return cast(T, self._get(key))

    def _get(self, key: Any) -> Any:
        if key in self._instances:
            return self._instances[key]
        if key in self._resolving:
            chain = " -> ".join(_name(k) for k in [*self._resolving, key])
            raise ConfigError(f"circular dependency: {chain}")
        spec = self._specs.get(key)
        if spec is None and not inspect.isclass(key):
            raise ConfigError(
                f"no provider for {_name(key)}: add it to Microservice(providers=...)"
            )
        self._resolving.append(key)
        try:
            if spec is None:
                instance = self._call(key)
            elif spec.use_value is not _UNSET:
                instance = spec.use_value
            elif spec.use_factory is not None:
                instance = self._call(spec.use_factory)
            else:
                instance = self._call(cast(type[Any], spec.use_class))
        finally:
            self._resolving.pop()
        self._instances[key] = instance
        return instance

    def _call(self, target: Callable[..., Any]) -> Any:
        """Call ``target`` with each parameter resolved from its annotation."""
        function = target.__init__ if inspect.isclass(target) else target
        if function is object.__init__:
            return target()
        try:
            hints = get_type_hints(function)
        except Exception as exc:  # a forward reference that cannot be resolved
            raise ConfigError(f"cannot read the type hints of {_name(target)}: {exc}") from exc
        kwargs: dict[str, Any] = {}
        for param in inspect.signature(target).parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            hint = hints.get(param.name)
            if hint is None:
                if param.default is param.empty:
                    raise ConfigError(
                        f"cannot build {_name(target)}: parameter {param.name!r} has no type "
                        "annotation to resolve it by; annotate it or give it a default"
                    )
                continue
            if hint not in self._specs and param.default is not param.empty:
                continue
            kwargs[param.name] = self._get(hint)
        try:
            return target(**kwargs)
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(f"building {_name(target)} failed: {exc!r}") from exc
