"""Every error jararaca raises on purpose derives from :class:`JararacaError`."""

from __future__ import annotations


class JararacaError(Exception):
    """Base class of the errors jararaca raises on purpose."""


class CronError(JararacaError, ValueError):
    """A cron expression or time zone that cannot be used; the message names the bad part."""


class ConfigError(JararacaError, ValueError):
    """Bad configuration: a URL, an app path, or a declaration (decorator, controller, provider)."""


class CredentialsError(ConfigError):
    """A server refused the user or password: retrying cannot help, so start-up stops at once."""


class PublisherNotBoundError(JararacaError, LookupError):
    """``use_publisher()`` (or ``Message.delay``...) was called with no publisher bound."""


class BackendError(JararacaError):
    """The state backend (Redis or memory) failed or is unreachable."""


class BrokerError(JararacaError):
    """The message broker (RabbitMQ or memory) failed, refused or could not route a message."""
