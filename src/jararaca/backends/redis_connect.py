"""Which Redis a backend URL names, and the redis-py client that talks to it.

- ``redis://``, ``rediss://``, ``unix://``: one server, exactly as before (redis-py's own URL
  parsing, a blocking pool);
- ``redis+sentinel://[[user]:password@]h1:p1,h2:p2/<service>[/db]`` (``rediss+sentinel`` for
  TLS to the master): the master of ``service`` as the Sentinels name it, through redis-py's
  :class:`redis.asyncio.sentinel.Sentinel`. Every new connection asks the Sentinels where the
  master is, so after a failover the next attempt (the backend's callers retry with backoff)
  lands on the new master; a connection still open to a demoted master answers READONLY,
  which redis-py turns into a connection error and a fresh look-up;
- ``redis+cluster://[[user]:password@]h1:p1,h2:p2`` (``rediss+cluster`` for TLS): a Redis
  Cluster through redis-py's :class:`redis.asyncio.cluster.RedisCluster`, which finds every
  node from the ones named and follows slot moves and failovers by itself.

Every URL may end in ``?shards=N`` (default 1: see :mod:`jararaca.backends.redis_keys`) and,
but for a cluster, ``?wait_replicas=N`` (default 0): each claim and enqueue is followed by
Redis ``WAIT N`` on the same connection (:func:`jararaca.backends.redis_scripts.run`).

The password of the user part is the master's; the Sentinels' own, if they have one, is
``?sentinel_password=``. Failover is the engines' own: nothing here elects or probes.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from jararaca.errors import ConfigError
from jararaca.redaction import redact
from jararaca.url_hosts import first_host, has_host_list, split_hosts

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
CLUSTER_EXAMPLE = "redis+cluster://:password@10.0.0.1:6379,10.0.0.2:6379?shards=4"
MAX_SHARDS = 1024
SENTINEL_EXAMPLE = "redis+sentinel://:password@10.0.0.1:26379,10.0.0.2:26379/mymaster/0"
DEFAULT_SENTINEL_PORT = 26379
MAX_CONNECTIONS = 50  # per backend; callers beyond it wait (20 s by default) for a free one
# Seconds to wait for one Sentinel: an unreachable one must not hold up asking the others.
SENTINEL_TIMEOUT = 2.0
_SENTINEL_OPTIONS = frozenset({"sentinel_password"})


@dataclass(frozen=True)
class SentinelTarget:
    """A ``redis+sentinel://`` URL, parsed."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_password: str | None = field(default=None, repr=False)
    tls: bool = False


def _address(item: str, default_port: int) -> tuple[str, int]:
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    host, _, port = item.partition(":")
    return host, int(port) if port else default_port


def parse_sentinel_url(url: str) -> SentinelTarget:
    """Check and parse a ``redis+sentinel://`` URL; a :class:`ConfigError` names what is
    wrong in it."""
    hosts = split_hosts(url, "backend", SENTINEL_EXAMPLE)
    parts = urlsplit(first_host(url) if has_host_list(url) else url.strip())
    path = [unquote(p) for p in parts.path.split("/") if p]
    if not path or len(path) > 2:
        raise ConfigError(
            f"bad Sentinel URL {redact(url)!r}: name the master's service after the hosts, "
            f"and optionally a database number, e.g. {SENTINEL_EXAMPLE!r}"
        )
    db = 0
    if len(path) == 2:
        if not path[1].isdigit():
            raise ConfigError(
                f"bad database {path[1]!r} in Sentinel URL {redact(url)!r}: use a number, "
                f"e.g. {SENTINEL_EXAMPLE!r}"
            )
        db = int(path[1])
    query = parse_qs(parts.query)
    _refuse_unknown_options(
        url,
        query,
        _SENTINEL_OPTIONS,
        "Sentinel URL",
        "the only ones are sentinel_password= (the Sentinels' own password; the master's goes "
        "before the hosts) and shards=N",
    )
    return SentinelTarget(
        sentinels=tuple(_address(h, DEFAULT_SENTINEL_PORT) for h in hosts),
        service=path[0],
        db=db,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        sentinel_password=query.get("sentinel_password", [None])[-1],
        tls=parts.scheme == "rediss+sentinel",
    )


Closer = Callable[[], Awaitable[None]]


async def _nothing_else() -> None:
    return None


@dataclass(frozen=True)
class ClusterTarget:
    """A ``redis+cluster://`` URL, parsed."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False


def parse_cluster_url(url: str) -> ClusterTarget:
    hosts = split_hosts(url, "backend", CLUSTER_EXAMPLE)
    parts = urlsplit(first_host(url) if has_host_list(url) else url.strip())
    if parts.path.strip("/"):
        raise ConfigError(
            f"bad Redis Cluster URL {redact(url)!r}: a cluster has no database number or "
            f"path, e.g. {CLUSTER_EXAMPLE!r}"
        )
    _refuse_unknown_options(
        url, parse_qs(parts.query), _OWN_OPTIONS, "Redis Cluster URL", "the only one is shards=N"
    )
    return ClusterTarget(
        nodes=tuple(_address(h, 6379) for h in hosts),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        tls=parts.scheme == "rediss+cluster",
    )


@dataclass(frozen=True)
class BackendOptions:
    """jararaca's own options of a Redis URL (redis-py must not see them)."""

    shards: int = 1
    # Replicas each claim and enqueue waits for (Redis WAIT); 0 waits for none.
    wait_replicas: int = 0


_OWN_OPTIONS = {"shards": (1, MAX_SHARDS), "wait_replicas": (0, 16)}
_OPTION_MEANINGS = {
    "shards": "how many hash tags the delayed queue is split over",
    "wait_replicas": "how many replicas a claim or an enqueue waits for",
}


def split_options(url: str) -> tuple[str, BackendOptions]:
    """The URL without jararaca's own options (``shards=``, ``wait_replicas=``), which
    redis-py would take for connection options, and their values, checked."""
    base, question, query = url.partition("?")
    items = [item for item in query.split("&") if item]
    values: dict[str, int] = {}
    for item in items:
        name, _, raw = item.partition("=")
        if name not in _OWN_OPTIONS:
            continue
        low, high = _OWN_OPTIONS[name]
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise ConfigError(
                f"bad {name}={raw!r} in backend URL {redact(url)!r}: use a whole number from "
                f"{low} to {high} ({_OPTION_MEANINGS[name]})"
            )
        values[name] = int(raw)
    kept = [item for item in items if item.partition("=")[0] not in _OWN_OPTIONS]
    return base + (question + "&".join(kept) if kept else ""), BackendOptions(**values)


def is_cluster(url: str) -> bool:
    return _scheme(url) in CLUSTER_SCHEMES


def check_url(url: str) -> BackendOptions:
    """Raise :class:`ConfigError` now for a URL :func:`open_client` would refuse later;
    return jararaca's options in it."""
    bare, options = split_options(url)
    scheme = _scheme(url)
    if scheme in SENTINEL_SCHEMES:
        parse_sentinel_url(bare)
    elif scheme in CLUSTER_SCHEMES:
        parse_cluster_url(bare)
        if options.wait_replicas:
            # WAIT counts the replicas of the connection's own writes; a cluster client
            # spreads one caller's writes over connections to several masters.
            raise ConfigError(
                f"wait_replicas is not supported on a Redis Cluster URL {redact(url)!r}: "
                "leave it out (a cluster's masters replicate asynchronously, as documented)"
            )
    else:
        _check_connection_options(bare)
    return options


def _check_connection_options(url: str) -> None:
    """redis-py hands each query option it does not parse itself to the connection class as
    a keyword: a misspelt one (or another tool's, such as ``namespace=``) failed only at the
    first command, with a TypeError from inside redis-py."""
    _refuse_unknown_options(
        url,
        parse_qs(urlsplit(url.strip()).query),
        _connection_options(),
        "Redis URL",
        "a Redis URL takes redis-py's connection options (e.g. socket_timeout=, "
        "max_connections=, client_name=) and jararaca's shards= and wait_replicas=; remove or "
        "correct it",
    )


def _refuse_unknown_options(
    url: str, given: Iterable[str], known: Iterable[str], kind: str, known_text: str
) -> None:
    """A :class:`ConfigError` naming the first option of ``given`` not in ``known``."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ConfigError(f"unknown option {unknown[0]!r} in {kind} {redact(url)!r}: {known_text}")


@functools.cache
def _connection_options() -> frozenset[str]:
    """The query options redis-py accepts in a URL: those it parses, and the keywords of
    its connection classes and of the blocking pool (``max_connections``, ``timeout``)."""
    from redis.asyncio import connection

    names = set(connection.URL_QUERY_ARGUMENT_PARSERS) | {"max_connections", "timeout"}
    for cls in (
        connection.AbstractConnection,
        connection.Connection,
        connection.SSLConnection,
        connection.UnixDomainSocketConnection,
    ):
        names |= set(inspect.signature(cls.__init__).parameters)
    return frozenset(names - {"self", "args", "kwargs"})


def _scheme(url: str) -> str:
    return urlsplit(first_host(url) if has_host_list(url) else url.strip()).scheme


def open_client(url: str) -> tuple[aioredis.Redis, Closer]:
    """A client for the Redis ``url`` names, and what closes whatever else it opened (the
    Sentinel clients). Raises :class:`ConfigError` for a URL redis-py cannot use."""
    scheme = _scheme(url)
    url = split_options(url)[0]
    if scheme in CLUSTER_SCHEMES:
        return _cluster_client(parse_cluster_url(url))
    if scheme in SENTINEL_SCHEMES:
        return _sentinel_client(parse_sentinel_url(url))
    try:
        # A blocking pool makes a burst of concurrent calls (a publisher gathering a thousand
        # delays) wait for a connection instead of failing with "Too many connections". URL
        # query options (max_connections=, timeout=...) still win.
        pool = aioredis.BlockingConnectionPool.from_url(
            url, decode_responses=False, socket_keepalive=True, max_connections=MAX_CONNECTIONS
        )
    except ValueError as exc:
        raise ConfigError(f"bad Redis URL {redact(url)!r}: {exc}") from None
    return aioredis.Redis.from_pool(pool), _nothing_else


def _sentinel_client(target: SentinelTarget) -> tuple[aioredis.Redis, Closer]:
    from redis.asyncio.sentinel import Sentinel

    sentinel = Sentinel(  # type: ignore[no-untyped-call]  # unannotated upstream
        list(target.sentinels),
        sentinel_kwargs={
            "password": target.sentinel_password,
            "socket_timeout": SENTINEL_TIMEOUT,
            "socket_connect_timeout": SENTINEL_TIMEOUT,
        },
    )
    # Sentinel's pool does not block when full; the backend's own callers are bounded (the
    # beat's batches, the worker's prefetch), so it is left unbounded rather than failing.
    client = sentinel.master_for(
        target.service,
        db=target.db,
        username=target.username,
        password=target.password,
        ssl=target.tls,
        decode_responses=False,
        socket_keepalive=True,
    )

    async def close_sentinels() -> None:
        with contextlib.suppress(RedisError, OSError):
            await sentinel.aclose()

    return client, close_sentinels


def _cluster_client(target: ClusterTarget) -> tuple[aioredis.Redis, Closer]:
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    cluster = RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
        username=target.username,
        password=target.password,
        ssl=target.tls,
        decode_responses=False,
        socket_keepalive=True,
    )
    # RedisCluster is no Redis subclass but answers every command the backend sends (each
    # call names keys of one hash tag, so it goes to one node) under the same names.
    return cast(aioredis.Redis, cluster), _nothing_else
