"""Building the registry from settings: URL policy, credentials key, health store."""

from __future__ import annotations

from sqlalchemy import Engine, inspect

from federator.config import ConfigError, Settings
from federator.registry.secrets import CredentialCipher, development_key, parse_keys
from federator.registry.service import Registry
from federator.registry.urlguard import UrlGuard, UrlPolicy


def url_policy(settings: Settings) -> UrlPolicy:
    try:
        return UrlPolicy.build(development=settings.development,
                               allowed_networks=settings.allowed_networks)
    except ValueError as e:
        raise ConfigError(str(e)) from e


def credential_cipher(settings: Settings) -> CredentialCipher:
    raw = settings.credentials_key or (
        development_key(settings.instance_dir) if settings.development else None)
    try:
        return CredentialCipher(parse_keys(raw))
    except ValueError as e:
        raise ConfigError(str(e)) from e


def make_registry(engine: Engine, settings: Settings) -> Registry:
    """The registry; production refuses to start when stored endpoints have
    credentials and ``FEDERATOR_CREDENTIALS_KEY`` is not set (a seed with
    credentials is refused by the seeding itself)."""
    registry = Registry(engine, cipher=credential_cipher(settings),
                        guard=UrlGuard(url_policy(settings), ca_file=settings.ca_bundle))
    if not registry.cipher.available and inspect(engine).has_table("endpoints") \
            and registry.has_credentials():
        raise ConfigError("FEDERATOR_CREDENTIALS_KEY must be set: registered endpoints "
                          "have credentials stored encrypted with it")
    return registry
