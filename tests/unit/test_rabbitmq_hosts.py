"""Broker URLs with several hosts and a queue type: parsing, redaction, the per-host URLs the
connection goes round, the queue arguments, and the error for a queue of another type."""

from __future__ import annotations

import contextlib

import pytest
from aio_pika import RobustConnection
from aiormq.exceptions import ChannelPreconditionFailed

from jararaca.brokers.rabbitmq import driver_url
from jararaca.brokers.rabbitmq_hosts import ATTEMPT_HOOK, HostRotatingConnection, host_urls
from jararaca.brokers.rabbitmq_topology import TopologyNames
from jararaca.errors import BrokerError, ConfigError
from jararaca.redaction import redact
from jararaca.url_hosts import DEFAULT_DELIVERY_LIMIT
from jararaca.urls import parse_broker_url

MULTI = "amqp://app:s3cr@t@h1:5672,h2:5673,[::1]/vh?exchange=shop&queue_type=quorum"


def test_a_broker_url_may_name_several_hosts() -> None:
    config = parse_broker_url(MULTI)
    assert config.hosts == ("h1:5672", "h2:5673", "[::1]")
    assert (config.exchange, config.queue_type) == ("shop", "quorum")
    assert config.delivery_limit == DEFAULT_DELIVERY_LIMIT == 20


def test_one_host_and_the_defaults_stay_as_they_were() -> None:
    config = parse_broker_url("amqp://guest:guest@127.0.0.1:5672/?exchange=app")
    assert config.hosts == ()
    assert config.queue_type == "classic"


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("amqp://u:p@h1:5672,,h2/", "empty host"),
        ("amqp://u:p@h1:5672,/", "empty host"),
        ("amqp://u:p@h1:5672,h2:99999/", "bad port '99999' of host 'h2'"),
        ("amqp://u:p@h1:5672,h2:x/", "bad port 'x' of host 'h2'"),
        ("amqp://u:p@h1/?queue_type=lazy", "unknown queue_type 'lazy'"),
        ("amqp://u:p@h1/?queue_type=quorum&delivery_limit=0", "bad delivery_limit '0'"),
    ],
)
def test_bad_broker_urls_name_the_bad_value(url: str, names: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_broker_url(url)
    message = str(caught.value)
    assert names in message
    assert "\n" not in message
    assert ":p@" not in message  # the password never shows


def test_redaction_hides_the_password_of_a_url_with_several_hosts() -> None:
    assert (
        redact(MULTI) == "amqp://app:***@h1:5672,h2:5673,[::1]/vh?exchange=shop&queue_type=quorum"
    )
    assert redact("amqp://h1:5672,h2:5672/") == "amqp://h1:5672,h2:5672/"


def test_each_host_gets_the_user_virtual_host_and_query_but_not_our_options() -> None:
    urls = host_urls(driver_url(MULTI))
    assert urls == [
        "amqp://app:s3cr@t@h1:5672/vh?reconnect_interval=1",
        "amqp://app:s3cr@t@h2:5673/vh?reconnect_interval=1",
        "amqp://app:s3cr@t@[::1]/vh?reconnect_interval=1",
    ]
    assert host_urls("amqp://u:p@h1/") == ["amqp://u:p@h1/"]


def test_the_connection_goes_round_the_hosts_on_each_attempt() -> None:
    # The override must replace the robust connection's own attempt, or no rotation happens.
    assert hasattr(RobustConnection, ATTEMPT_HOOK)
    assert ATTEMPT_HOOK in HostRotatingConnection.__dict__


async def test_each_reconnection_attempt_goes_to_the_next_host() -> None:
    urls = ["amqp://u:p@127.0.0.1:1/", "amqp://u:p@127.0.0.1:2/", "amqp://u:p@127.0.0.1:3/"]
    connection = HostRotatingConnection(urls, start=1)
    tried: list[int | None] = []
    for _ in range(4):
        with contextlib.suppress(OSError):
            await getattr(connection, ATTEMPT_HOOK)()
        tried.append(connection.url.port)
    assert tried == [2, 3, 1, 2]
    await connection.close()


def _refusal(arg: str, asked: str, current: str) -> ChannelPreconditionFailed:
    return ChannelPreconditionFailed(
        f"PRECONDITION_FAILED - inequivalent arg '{arg}' for queue 'shop.orders' in vhost '/': "
        f"received {asked} but current is {current}"
    )


def test_quorum_queues_carry_their_type_and_delivery_limit() -> None:
    names = TopologyNames("shop", dead_letter_max=10, queue_type="quorum", delivery_limit=7)
    assert names.queue_arguments() == {
        "x-dead-letter-exchange": "shop.dlx",
        "x-queue-type": "quorum",
        "x-delivery-limit": 7,
    }
    assert names.dead_letter_arguments()["x-queue-type"] == "quorum"
    assert "x-delivery-limit" not in names.dead_letter_arguments()
    assert "x-queue-type" not in names.broadcast_arguments()
    classic = TopologyNames("shop", dead_letter_max=10)
    assert classic.queue_arguments() == {"x-dead-letter-exchange": "shop.dlx"}


def test_a_queue_of_the_other_type_gives_one_clear_paragraph() -> None:
    names = TopologyNames("shop", dead_letter_max=10, queue_type="quorum")
    exc = _refusal("x-queue-type", "the value 'quorum' of type 'longstr'", "none")
    error = names.queue_refused("shop.orders", exc)
    assert isinstance(error, ConfigError)
    message = str(error)
    assert "queue shop.orders" in message
    assert "exists as a classic queue" in message
    assert "asked for quorum (?queue_type=quorum" in message
    assert "rabbitmqctl delete_queue shop.orders" in message
    assert "keep ?queue_type=classic" in message
    assert "\n" not in message

    back = TopologyNames("shop", dead_letter_max=10)
    exc = _refusal("x-queue-type", "'classic'", "the value 'quorum' of type 'longstr'")
    assert "exists as a quorum queue" in str(back.queue_refused("shop.orders", exc))


def test_another_delivery_limit_is_named_too() -> None:
    names = TopologyNames("shop", dead_letter_max=10, queue_type="quorum", delivery_limit=5)
    exc = _refusal(
        "x-delivery-limit", "the value '5' of type 'long'", "the value '20' of type 'long'"
    )
    message = str(names.queue_refused("shop.orders", exc))
    assert "x-delivery-limit=20" in message and "x-delivery-limit=5" in message
    assert "keep ?delivery_limit=20" in message


def test_other_refusals_stay_broker_errors() -> None:
    names = TopologyNames("shop", dead_letter_max=10)
    exc = _refusal("x-max-length", "'10'", "none")
    assert type(names.queue_refused("shop.orders", exc)) is BrokerError
    assert type(names.dead_letter_refused(exc)) is BrokerError
