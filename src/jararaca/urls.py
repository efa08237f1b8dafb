"""Parse and validate broker and backend URLs (pure: no driver, no I/O).

:mod:`jararaca.engines` builds the matching implementation. URLs are never logged with their
password: use :func:`jararaca.redaction.redact`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from jararaca.brokers.base import DEFAULT_PREFETCH
from jararaca.errors import ConfigError
from jararaca.redaction import redact
from jararaca.url_hosts import (
    DEFAULT_DELIVERY_LIMIT,
    first_host,
    has_host_list,
    queue_options,
    split_hosts,
)

DEFAULT_EXCHANGE = "jararaca"
BROKER_SCHEMES = ("amqp", "amqps", "memory")
BACKEND_SCHEMES = (
    "redis",
    "rediss",
    "redis+sentinel",
    "rediss+sentinel",
    "redis+cluster",
    "rediss+cluster",
    "unix",
    "memory",
    "sqlite",
)
SQLITE_EXAMPLE = "sqlite:///jararaca.db (relative) or sqlite:////var/lib/app/jararaca.db"
SQLITE_SYNCHRONOUS = ("normal", "full")
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")


@dataclass(frozen=True)
class BrokerConfig:
    """A broker URL: ``hosts`` (``host[:port]`` items, tried in this order; empty when the
    URL names one host) and the options jararaca reads from its query."""

    url: str
    scheme: str
    exchange: str
    prefetch: int
    hosts: tuple[str, ...] = ()
    queue_type: str = "classic"
    delivery_limit: int = DEFAULT_DELIVERY_LIMIT


BROKER_EXAMPLE = "amqp://guest:guest@127.0.0.1:5672/?exchange=app"


def parse_broker_url(url: str) -> BrokerConfig:
    # Several hosts are only for RabbitMQ; one host stays as urlsplit reads it.
    hosts = split_hosts(url, "broker", BROKER_EXAMPLE) if has_host_list(url) else ()
    parts = _split(first_host(url), BROKER_SCHEMES, "broker", BROKER_EXAMPLE)
    if hosts and parts.scheme == "memory":
        raise ConfigError(f"a memory:// broker URL names no hosts: {redact(url)!r}")
    query = parse_qs(parts.query)
    exchange = query.get("exchange", [DEFAULT_EXCHANGE])[-1]
    if not _NAME.match(exchange):
        raise ConfigError(
            f"bad exchange name {exchange!r} in broker URL {redact(url)}: use 1-200 letters, "
            "digits, '.', '_', ':' or '-'"
        )
    raw_prefetch = query.get("prefetch_count", [str(DEFAULT_PREFETCH)])[-1]
    try:
        prefetch = int(raw_prefetch)
        if prefetch < 1:
            raise ValueError
    except ValueError:
        raise ConfigError(
            f"bad prefetch_count {raw_prefetch!r} in broker URL {redact(url)}: use a positive "
            "integer such as ?prefetch_count=32"
        ) from None
    queue_type, delivery_limit = queue_options(query, url)
    return BrokerConfig(url, parts.scheme, exchange, prefetch, hosts, queue_type, delivery_limit)


def _split(url: str, schemes: tuple[str, ...], what: str, example: str) -> SplitResult:
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"no {what} URL given: pass one such as {example!r}")
    parts = urlsplit(url.strip())
    if parts.scheme not in schemes:
        raise ConfigError(
            f"unsupported {what} URL {redact(url)!r}: the scheme must be one of "
            f"{', '.join(s + '://' for s in schemes)}, e.g. {example!r}"
        )
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise ConfigError(f"bad port in {what} URL {redact(url)!r}") from None
    return parts


def memory_name(url: str) -> str:
    parts = urlsplit(url)
    return (parts.netloc + parts.path).strip("/")


def parse_backend_url(url: str) -> SplitResult:
    """The parts of a backend URL whose scheme and port(s) are valid (of its first host,
    when it names several, as a Sentinel URL does)."""
    example = "redis://127.0.0.1:6379/0"
    if isinstance(url, str) and has_host_list(url):
        split_hosts(url, "backend", example)
    parts = _split(first_host(url), BACKEND_SCHEMES, "backend", example)
    if "+" not in parts.scheme and has_host_list(url):
        raise ConfigError(
            f"backend URL {redact(url)!r} names several hosts: only redis+sentinel:// (a list "
            "of Sentinels) and redis+cluster:// (nodes of a cluster) take a list; a plain "
            "redis:// URL names one server"
        )
    return parts


@dataclass(frozen=True)
class SqliteConfig:
    """A ``sqlite://`` backend URL: the file (relative to the working directory unless it
    starts with ``/``) and ``synchronous`` (``normal``, the default, or ``full``)."""

    path: str
    synchronous: str


def parse_sqlite_url(url: str) -> SqliteConfig:
    """``sqlite:///relative.db`` or ``sqlite:////absolute.db`` (three slashes, then the path,
    as SQLAlchemy writes them); ``?synchronous=full`` syncs every commit to the disk."""
    parts = _split(url, ("sqlite",), "backend", SQLITE_EXAMPLE)
    if parts.netloc:
        raise ConfigError(
            f"bad SQLite URL {redact(url)!r}: a SQLite file has no host; write three slashes "
            f"before the path, e.g. {SQLITE_EXAMPLE}"
        )
    path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
    if not path or path.endswith("/") or path == ":memory:":
        raise ConfigError(
            f"bad SQLite URL {redact(url)!r}: name a file, e.g. {SQLITE_EXAMPLE} "
            "(memory:// keeps state in memory)"
        )
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - {"synchronous"})
    if unknown:
        raise ConfigError(
            f"unknown option {unknown[0]!r} in SQLite URL {redact(url)!r}: the only one is "
            "synchronous=normal|full"
        )
    synchronous = query.get("synchronous", ["normal"])[-1].lower()
    if synchronous not in SQLITE_SYNCHRONOUS:
        raise ConfigError(
            f"bad synchronous={synchronous!r} in SQLite URL {redact(url)!r}: use normal "
            "(survives a killed process) or full (also survives a power cut; slower)"
        )
    return SqliteConfig(path, synchronous)
