"""Redis backend URLs beyond one server (Sentinel, Cluster, shards), parsed and checked, and
the key names of shards (no server)."""

from __future__ import annotations

import zlib

import pytest

from jararaca.backends.redis import RedisBackend
from jararaca.backends.redis_connect import (
    BackendOptions,
    SentinelTarget,
    check_url,
    parse_cluster_url,
    parse_sentinel_url,
    split_options,
)
from jararaca.backends.redis_keys import Keys, QueueKeys, shard_of
from jararaca.engines import make_backend
from jararaca.errors import ConfigError
from jararaca.redaction import redact
from jararaca.urls import parse_backend_url


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_database() -> None:
    target = parse_sentinel_url(
        "redis+sentinel://app:s3cret@10.0.0.1:26380,10.0.0.2,[::1]:26381/orders/3"
        "?sentinel_password=sp"
    )
    assert target == SentinelTarget(
        sentinels=(("10.0.0.1", 26380), ("10.0.0.2", 26379), ("::1", 26381)),
        service="orders",
        db=3,
        username="app",
        password="s3cret",
        sentinel_password="sp",
        tls=False,
    )
    assert "s3cret" not in repr(target) and "sp'" not in repr(target)
    tls = parse_sentinel_url("rediss+sentinel://:pw@h1:26379/orders")
    assert (tls.tls, tls.db, tls.password, tls.username) == (True, 0, "pw", None)


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("redis+sentinel://:pw@h1:26379,h2:26379", "name the master's service"),
        ("redis+sentinel://:pw@h1:26379/orders/x", "bad database 'x'"),
        ("redis+sentinel://:pw@h1:26379/orders/0/1", "name the master's service"),
        ("redis+sentinel://:pw@h1:26379,,h2/orders", "empty host"),
        ("redis+sentinel://:pw@h1:0/orders", "bad port '0' of host 'h1'"),
        ("redis+sentinel://:pw@h1/orders?service=x", "unknown option 'service'"),
        ("redis://:pw@h1:6379,h2:6379/0", "names several hosts"),
        ("redis+sentinal://:pw@h1/orders", "the scheme must be one of"),
    ],
)
def test_bad_sentinel_urls_name_the_bad_value(url: str, names: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_backend_url(url)
        make_backend(url, namespace="n")
    message = str(caught.value)
    assert names in message
    assert ":pw@" not in message
    assert "\n" not in message


def test_a_sentinel_backend_is_built_without_touching_the_network() -> None:
    backend = make_backend("redis+sentinel://:pw@127.0.0.1:1/orders", namespace="n")
    assert isinstance(backend, RedisBackend)


def test_the_password_of_a_sentinel_url_is_redacted() -> None:
    url = "redis+sentinel://:pw@h1:26379,h2:26379/orders?sentinel_password=sp"
    assert redact(url) == "redis+sentinel://:***@h1:26379,h2:26379/orders?sentinel_password=***"


def test_a_cluster_url_names_its_nodes_and_shards() -> None:
    url = "redis+cluster://:pw@10.0.0.1:7000,10.0.0.2?shards=4"
    target = parse_cluster_url(url)
    assert target.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 6379))
    assert (target.password, target.tls) == ("pw", False)
    assert check_url(url) == BackendOptions(shards=4)
    assert check_url("redis://127.0.0.1:6379/0") == BackendOptions(shards=1, wait_replicas=0)
    assert split_options("redis://h:6379/0?shards=3&socket_timeout=5&wait_replicas=1") == (
        "redis://h:6379/0?socket_timeout=5",
        BackendOptions(shards=3, wait_replicas=1),
    )
    sentinel = "redis+sentinel://h1:26379,h2/orders/0?wait_replicas=2&shards=2"
    assert check_url(sentinel) == BackendOptions(shards=2, wait_replicas=2)


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("redis+cluster://:pw@h1:7000,h2:7000/0", "a cluster has no database number"),
        ("redis+cluster://:pw@h1:7000?db=1", "unknown option 'db'"),
        ("redis+cluster://:pw@h1:7000?shards=0", "bad shards='0'"),
        ("redis://:pw@h1:6379/0?shards=x", "bad shards='x'"),
        ("redis://:pw@h1:6379/0?wait_replicas=-1", "bad wait_replicas='-1'"),
        ("redis+cluster://:pw@h1:7000?wait_replicas=1", "wait_replicas is not supported"),
        ("redis+cluster://:pw@h1:7000,h2:70000", "bad port '70000'"),
    ],
)
def test_bad_cluster_urls_name_the_bad_value(url: str, names: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_backend(url, namespace="n")
    assert names in str(caught.value)
    assert ":pw@" not in str(caught.value)


def test_one_shard_keeps_todays_key_names_and_more_shards_add_their_own() -> None:
    one = Keys.for_namespace("shop")
    assert [one.delayed, one.inflight] == ["jararaca:{shop}:delayed", "jararaca:{shop}:inflight"]
    assert one.shards == (QueueKeys.for_shard("shop", 0),)
    four = Keys.for_namespace("shop:eu", 4)
    assert four.shards[0].delayed == "jararaca:{shop:eu}:delayed"
    assert four.shards[3].delayed_env == "jararaca:{shop:eu#3}:delayed:env"
    # Shard 1 of "a" is never namespace "a:1" (':' may be part of a namespace, '#' not).
    assert Keys.for_namespace("a", 2).shards[1].delayed != Keys.for_namespace("a:1").delayed
    with pytest.raises(ConfigError, match="must not contain '#'"):
        Keys.for_namespace("a#b", 2)


def test_a_task_id_always_falls_in_the_same_shard() -> None:
    assert shard_of("order-17", 1) == 0
    assert shard_of("order-17", 8) == zlib.crc32(b"order-17") % 8 == 4  # not hash()
    assert {shard_of(f"m{i}", 4) for i in range(100)} == {0, 1, 2, 3}


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("redis://127.0.0.1:6379/0?namespace=orders", "unknown option 'namespace'"),
        ("rediss://:pw@h1:6380/0?socket_timout=3", "unknown option 'socket_timout'"),
    ],
)
def test_an_unknown_option_of_a_plain_redis_url_is_refused_before_connecting(
    url: str, names: str
) -> None:
    # redis-py passes such options to its connection class, which raised a TypeError at the
    # first command, from inside redis-py.
    with pytest.raises(ConfigError, match=names) as caught:
        RedisBackend(url, namespace="app")
    assert "pw" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0?socket_timeout=3&max_connections=10&shards=2",
        "rediss://h1/0?ssl_cert_reqs=none&client_name=beat",
        "unix:///run/redis.sock?db=2&health_check_interval=30",
    ],
)
def test_redis_pys_own_connection_options_are_accepted(url: str) -> None:
    RedisBackend(url, namespace="app")
