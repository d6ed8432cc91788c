"""Federator: the broker. ``create_app`` builds it from settings read once."""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from flask_smorest import Api
from sqlalchemy import Engine

from adapters.plugins import ClientContext, load_clients
from adapters.tracing import make_tracing
from federator.audit.alert_senders import install_alerts
from federator.audit.setup import make_trail
from federator.audit.trail import AuditTrail
from federator.auth.access import public, unguarded_endpoints
from federator.auth.tokens import TokenValidator
from federator.config import Settings
from federator.logs import install_request_ids
from federator.lookup.breakers import BreakerPolicy, Breakers
from federator.lookup.budget import BudgetPolicy, LookupBudget
from federator.lookup.dispatch import Dispatcher
from federator.lookup.fanout import FanOut
from federator.lookup.interrupted import close_at_start
from federator.lookup.routing import load_postcode_table
from federator.lookup.service import LookupPolicy, LookupService
from federator.registry.service import Registry
from federator.registry.setup import make_registry
from federator.signing import BrokerKeys
from federator.state import SharedState
from federator.storage import make_engine, upgrade

log = logging.getLogger(__name__)

#: Modules with a ``blp``, each attached to its access rule where it is defined.
BLUEPRINTS = (
    "federator.health",
    "federator.api.lookups",
    "federator.api.audit",
    "federator.api.audit_redaction",
    "federator.api.audit_authority",
    "federator.api.transparency",
    "federator.api.registry",
    "federator.web.assets",
    "federator.web.home",
    "federator.web.lookups",
    "federator.web.receipts",
    "federator.api.subject_access",
    "federator.web.audit_pages",
    "federator.web.audit_redaction_pages",
    "federator.web.audit_queue_pages",
    "federator.web.audit_overview_pages",
    "federator.web.subject_access_pages",
    "federator.web.audit_authority_pages",
    "federator.web.registry_pages",
    "federator.web.registry_authority_pages",
    "federator.web.registry_approval_pages",
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

    install_request_ids(app)
    services = _services(settings, migrate=migrate)
    app.extensions["federator"] = services

    api = Api(app)
    for name in BLUEPRINTS:
        api.register_blueprint(importlib.import_module(name).blp)
    public(app.blueprints["api-docs"])
    from federator.metrics_endpoint import blp as metrics_blueprint

    app.register_blueprint(metrics_blueprint)  # GET /metrics, not in the API document
    _web_security(app, settings, services.state)
    _integrate_before_reads(app, services.trail)
    missing = unguarded_endpoints(app, lambda ep: ep.split(".")[0] if "." in ep else None)
    if missing:
        raise RuntimeError(f"routes without an access rule: {missing}")
    return app


#: Requests that never read the trail back: the lookup's own path (it only
#: queues its records), and what is not about the trail at all.
_NOT_READING = frozenset({"static", "lookups.create_lookup", "web_lookups.new_lookup"})
_NOT_READING_BLUEPRINTS = frozenset({"health", "metrics"})


def _integrate_before_reads(app: Flask, trail: AuditTrail) -> None:
    """Before any other request, what lookups queued is integrated into the trail
    (``federator.audit.sequencer``; PostgreSQL): a page or an API reads each
    lookup's records as soon as the lookup has answered, from any broker process.
    One indexed read when nothing is queued; if it fails, the request goes on
    (reading the trail, it meets the same database and says so)."""
    from flask import request
    from sqlalchemy.exc import SQLAlchemyError

    @app.before_request
    def _integrate() -> None:
        if request.endpoint is None or request.endpoint in _NOT_READING \
                or request.blueprint in _NOT_READING_BLUEPRINTS:
            return
        try:
            trail.integrate_pending()
        except SQLAlchemyError:
            log.warning("queued audit entries not integrated before a read")
        except Exception as e:  # never a 500 for the read: the sequencer retries
            log.error("queued audit entries not integrated before a read (%s)",
                      type(e).__name__)


def _web_security(app: Flask, settings: Settings, state: SharedState) -> None:
    """Sign-in, sessions, CSRF, security headers and lookup limits (federator.auth)."""
    from flask_wtf.csrf import CSRFProtect

    from federator.auth.access import BEARER
    from federator.auth.headers import init_headers
    from federator.auth.limits import init_limits
    from federator.auth.oidc import init_signin
    from federator.auth.sessions import init_sessions

    init_sessions(app, settings, state)
    init_signin(app, settings)
    csrf = CSRFProtect(app)
    for name in BEARER & set(app.blueprints):
        csrf.exempt(app.blueprints[name])
    init_headers(app, identity_provider=settings.oidc_issuer)
    init_limits(app)


def _services(settings: Settings, *, migrate: bool) -> Services:
    engine = make_engine(settings.sqlalchemy_url, settings.instance_dir)
    if migrate:
        upgrade(engine)
    trail = make_trail(engine, settings)
    install_alerts(trail, settings)  # flags fired: webhook, syslog, e-mail
    registry = make_registry(engine, settings)
    if settings.registry_seed:
        registry.seed(settings.registry_seed, trail)
    key_file = settings.signing_key_file or settings.instance_dir / "signing-key.jwk.json"
    keys = BrokerKeys.load(key_file, settings.broker_id, create=settings.development)
    trail.sign_with(keys)
    fanout = FanOut(settings.fanout_workers, tracing=make_tracing(
        "federator-broker", endpoint=settings.otel_exporter_otlp_endpoint))
    table = load_postcode_table(settings.postcode_table or DEFAULT_POSTCODES)
    state = SharedState(settings.redis_url, settings.redis_prefix)
    # One client per installed adapter kind (entry point group federator.adapters).
    clients = load_clients(ClientContext(
        sign=keys.sign, max_answer_bytes=settings.max_answer_bytes,
        max_professionals=settings.max_professionals,
        user_agent=f"federator/{settings.broker_id}", redis=state.redis,
        redis_prefix=settings.redis_prefix, checkpoint=trail.latest_signed,
        ca_file=settings.ca_bundle,
        # every new connection to an authority re-resolves and re-checks its
        # address (DNS rebinding); development allows loopback
        resolve=lambda host, port: registry.guard.resolve_checked(host, port)))

    dispatcher = Dispatcher(clients, registry.credentials)
    for close in dispatcher.closers():
        fanout.on_shutdown(close)

    lookups = LookupService(
        policy=LookupPolicy(settings.audit_key, settings.consent_max_age_days,
                            settings.deadline_default_ms, settings.deadline_max_ms,
                            retry_window_s=settings.retry_window_s),
        trail=trail, fanout=fanout, dispatcher=dispatcher, endpoints=registry.all,
        tracing=fanout.tracing,
        postcode_table=table,
        breakers=Breakers(state, BreakerPolicy(
            failures=settings.breaker_failures, window_s=settings.breaker_window_s,
            cooldown_s=settings.breaker_cooldown_s,
            probe_s=settings.deadline_max_ms // 1000 + 5)),
        budget=LookupBudget(BudgetPolicy(
            per_minute=settings.lookups_per_minute, per_day=settings.lookups_per_day,
            refused_per_minute=settings.refused_lookups_per_minute,
            refused_per_day=settings.refused_lookups_per_day,
            organisation_per_minute=settings.organisation_lookups_per_minute,
            organisation_per_day=settings.organisation_lookups_per_day),
            state, redis_url=settings.redis_url, prefix=settings.redis_prefix),
    )
    close_at_start(trail, lookups.interrupted_after_s)  # lookups cut off by a crash
    tokens = TokenValidator(settings.oidc_issuer, settings.oidc_audience,
                            roles_claim=settings.roles_claim,
                            organisation_claim=settings.organisation_claim,
                            authority_claim=settings.authority_claim,
                            clients=settings.oidc_token_clients,
                            required_acr=settings.required_acr,
                            ca_file=settings.ca_bundle, role_map=settings.role_mapping,
                            role_selector=settings.role_selection,
                            ) if settings.oidc_issuer else None
    return Services(settings=settings, engine=engine, state=state,
                    trail=trail, registry=registry, keys=keys, tokens=tokens,
                    lookups=lookups, fanout=fanout)
