"""Production refuses to start when stored credentials have no key to open them."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from federator.audit.trail import AuditTrail
from federator.config import ConfigError, Settings
from federator.registry.service import SeedError
from federator.registry.setup import make_registry
from federator.storage import make_engine, upgrade

SEED = Path(__file__).resolve().parents[2] / "config" / "registry.example.toml"


def test_production_needs_the_credentials_key(tmp_path: Path, database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    trail = AuditTrail(engine)
    without = Settings(env="production", instance_dir=tmp_path)
    with pytest.raises(SeedError, match="FEDERATOR_CREDENTIALS_KEY"):
        make_registry(engine, without).seed(SEED, trail)
    key = Fernet.generate_key().decode()
    registry = make_registry(engine, Settings(env="production", instance_dir=tmp_path,
                                              credentials_key=key))
    registry.seed(SEED, trail)
    assert registry.credentials("kirklees-health")["client_secret"] == "replace-me"
    with pytest.raises(ConfigError, match="FEDERATOR_CREDENTIALS_KEY"):
        make_registry(engine, without)
    with pytest.raises(ConfigError, match="FEDERATOR_ALLOWED_NETWORKS"):
        make_registry(engine, Settings(env="production", instance_dir=tmp_path,
                                       credentials_key=key, allowed_networks=("bogus",)))
    engine.dispose()
