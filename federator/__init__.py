"""Federator: the broker. ``create_app`` builds it from settings read once."""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from flask_smorest import Api
from sqlalchemy import Engine

from adapters.base import AdapterError, Target
from adapters.lookup_v1 import LookupV1Client
from federator.audit.trail import AuditTrail
from federator.auth.access import public, unguarded_endpoints
from federator.auth.tokens import TokenValidator
from federator.config import Settings
from federator.lookup.fanout import FanOut
from federator.lookup.routing import Endpoint, load_postcode_table
from federator.lookup.service import LookupPolicy, LookupService
from federator.registry.service import Registry
from federator.signing import BrokerKeys
from federator.state import SharedState
from federator.storage import make_engine, upgrade

log = logging.getLogger(__name__)

#: Modules with a ``blp``, each attached to its access rule where it is defined.
BLUEPRINTS = (
    "federator.health",
    "federator.api.lookups",
)

DEFAULT_POSTCODES = Path(__file__).resolve().parent.parent / "config" / "postcodes.csv"


@dataclass
class Services:
    """What the blueprints reach through ``current_app.extensions["federator"]``."""

    settings: Settings
    engine: Engine
    state: SharedState
    trail: AuditTrail
    registry: Registry
    keys: BrokerKeys
    tokens: TokenValidator | None
    lookups: LookupService
    fanout: FanOut


def create_app(settings: Settings | None = None, *, migrate: bool = False) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__, instance_path=str(settings.instance_dir.resolve()))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        API_TITLE="Federator",
        API_VERSION="1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=64 * 1024,
        JSON_SORT_KEYS=False,
    )
    for name in settings.generated:
        log.warning("%s is not set: a random value is used for this process only", name)

    services = _services(settings, migrate=migrate)
    app.extensions["federator"] = services

    api = Api(app)
    for name in BLUEPRINTS:
        api.register_blueprint(importlib.import_module(name).blp)
    public(app.blueprints["api-docs"])
    missing = unguarded_endpoints(app, lambda ep: ep.split(".")[0] if "." in ep else None)
    if missing:
        raise RuntimeError(f"routes without an access rule: {missing}")
    return app


def _services(settings: Settings, *, migrate: bool) -> Services:
    engine = make_engine(settings.sqlalchemy_url, settings.instance_dir)
    if migrate:
        upgrade(engine)
    trail = AuditTrail(engine)
    registry = Registry(engine)
    if settings.registry_seed:
        registry.seed(settings.registry_seed, trail)
    key_file = settings.signing_key_file or settings.instance_dir / "signing-key.jwk.json"
    keys = BrokerKeys.load(key_file, settings.broker_id, create=settings.development)
    client = LookupV1Client(sign=keys.sign, max_answer_bytes=settings.max_answer_bytes,
                            user_agent=f"federator/{settings.broker_id}")
    fanout = FanOut(settings.fanout_workers)
    table = load_postcode_table(settings.postcode_table or DEFAULT_POSTCODES)

    def ask(endpoint: Endpoint, payload: Any, deadline: float) -> Any:
        if endpoint.protocol != client.protocol:
            raise AdapterError(f"protocol {endpoint.protocol} is not supported yet")
        target = Target(id=endpoint.id, url=endpoint.url, timeout_ms=endpoint.timeout_ms)
        return client.lookup(target, payload, deadline=deadline)

    lookups = LookupService(
        policy=LookupPolicy(settings.audit_key, settings.consent_max_age_days,
                            settings.deadline_default_ms, settings.deadline_max_ms),
        trail=trail, fanout=fanout, endpoints=registry.all, ask=ask, postcode_table=table,
    )
    tokens = TokenValidator(settings.oidc_issuer, settings.oidc_audience,
                            roles_claim=settings.roles_claim) if settings.oidc_issuer else None
    state = SharedState(settings.redis_url, settings.redis_prefix)
    return Services(settings=settings, engine=engine, state=state,
                    trail=trail, registry=registry, keys=keys, tokens=tokens,
                    lookups=lookups, fanout=fanout)
