"""The parts of URL parsing that the engines' own modules share with :mod:`jararaca.urls`
(which they cannot import: it imports the brokers' protocol module): host lists and the
RabbitMQ queue options. Pure: no driver, no I/O.

A URL may name several hosts, separated by commas, where one host would stand:
``scheme://user:password@h1:p1,h2:p2/rest``. :func:`urllib.parse.urlsplit` reads one host, so
the list is split here and :func:`first_host` gives a URL it can read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from jararaca.errors import ConfigError
from jararaca.redaction import redact

QUEUE_TYPES = ("classic", "quorum")
# How often RabbitMQ hands a message of a quorum queue out before it dead-letters it instead:
# a message that keeps killing (or stalling) workers must not circle for ever.
DEFAULT_DELIVERY_LIMIT = 20


def _netloc_span(url: str) -> tuple[int, int]:
    """Where the authority (``user:password@host:port,host:port``) of ``url`` starts and
    ends; (-1, -1) without one."""
    start = url.find("://")
    if start < 0:
        return -1, -1
    start += 3
    end = len(url)
    for stop in "/?#":
        found = url.find(stop, start)
        if found >= 0:
            end = min(end, found)
    return start, end


def has_host_list(url: str) -> bool:
    start, end = _netloc_span(url.strip()) if isinstance(url, str) else (-1, -1)
    return start >= 0 and "," in url.strip()[start:end].rpartition("@")[2]


def first_host(url: str) -> str:
    """``url`` with only the first of its hosts, for :func:`urlsplit` (which reads one)."""
    if not isinstance(url, str) or not has_host_list(url):
        return url
    url = url.strip()
    start, end = _netloc_span(url)
    userinfo, at, hosts = url[start:end].rpartition("@")
    return url[:start] + userinfo + at + hosts.split(",")[0] + url[end:]


def split_hosts(url: str, what: str, example: str) -> tuple[str, ...]:
    """The ``host[:port]`` items of a URL naming one or several hosts (comma-separated), each
    checked: a host must be there and a port must be a number from 1 to 65535."""
    url = url.strip()
    start, end = _netloc_span(url)
    hosts = url[start:end].rpartition("@")[2] if start >= 0 else ""
    found = []
    for item in hosts.split(","):
        host, port = _host_port(item)
        if not host:
            raise ConfigError(
                f"empty host in {what} URL {redact(url)!r} (hosts {hosts!r}): name each host, "
                f"separated by commas, e.g. {example!r}"
            )
        if port is not None and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise ConfigError(
                f"bad port {port!r} of host {host!r} in {what} URL {redact(url)!r}: use a "
                "number from 1 to 65535"
            )
        found.append(item)
    return tuple(found)


def _host_port(item: str) -> tuple[str, str | None]:
    if item.startswith("["):  # an IPv6 address: [::1]:5672
        address, _, rest = item.partition("]")
        return address + "]" if address[1:] else "", rest[1:] if rest.startswith(":") else None
    host, colon, port = item.partition(":")
    return host, port if colon else None


def queue_options(query: Mapping[str, Sequence[str]], url: str) -> tuple[str, int]:
    """``queue_type`` and ``delivery_limit`` of a broker URL's query, checked."""
    queue_type = query.get("queue_type", ["classic"])[-1]
    if queue_type not in QUEUE_TYPES:
        raise ConfigError(
            f"unknown queue_type {queue_type!r} in broker URL {redact(url)}: use "
            "?queue_type=classic (the default) or ?queue_type=quorum (replicated queues, for a "
            "RabbitMQ cluster)"
        )
    raw_limit = query.get("delivery_limit", [str(DEFAULT_DELIVERY_LIMIT)])[-1]
    try:
        delivery_limit = int(raw_limit)
        if delivery_limit < 1:
            raise ValueError
    except ValueError:
        raise ConfigError(
            f"bad delivery_limit {raw_limit!r} in broker URL {redact(url)}: use a positive "
            f"integer such as ?delivery_limit={DEFAULT_DELIVERY_LIMIT} (quorum queues only)"
        ) from None
    return queue_type, delivery_limit


@dataclass(frozen=True)
class AmqpOptions:
    """What the RabbitMQ broker reads from its URL beyond what aio-pika does."""

    hosts: tuple[str, ...]
    queue_type: str
    delivery_limit: int


def amqp_options(url: str) -> AmqpOptions:
    hosts = split_hosts(url, "broker", "amqp://u:p@h1:5672,h2:5672/") if has_host_list(url) else ()
    query = parse_qs(urlsplit(first_host(url)).query)
    return AmqpOptions(hosts, *queue_options(query, url))
