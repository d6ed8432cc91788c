"""The trail as the settings configure it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

from federator.audit.flags import FlagLimits
from federator.audit.trail import AuditTrail
from federator.config import ConfigError, Settings


def make_trail(engine: Engine, settings: Settings) -> AuditTrail:
    try:
        limits = FlagLimits.parse(
            per_hour=settings.audit_per_hour, per_day=settings.audit_per_day,
            office_hours=settings.audit_office_hours, timezone=settings.audit_timezone,
            no_match_streak=settings.audit_no_match_streak,
            child_organisations=settings.audit_child_organisations,
            child_window_hours=settings.audit_child_window_hours,
            repeat_lookups=settings.audit_repeat_lookups,
            repeat_window_hours=settings.audit_repeat_window_hours,
            sustained_hours=settings.audit_sustained_hours,
            sustained_per_hour=settings.audit_sustained_per_hour)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    return AuditTrail(engine, flag_limits=limits,
                      checkpoint_every=settings.audit_checkpoint_every,
                      checkpoint_interval_s=settings.audit_checkpoint_interval_s,
                      log_id=settings.broker_id)


@contextmanager
def open_trail(settings: Settings) -> Iterator[AuditTrail]:
    """The trail with the broker's keys, for commands; the engine is closed after."""
    from federator.signing import BrokerKeys
    from federator.storage import make_engine

    engine = make_engine(settings.sqlalchemy_url, settings.instance_dir)
    try:
        trail = make_trail(engine, settings)
        key_file = settings.signing_key_file or settings.instance_dir / "signing-key.jwk.json"
        try:
            trail.sign_with(BrokerKeys.load(key_file, settings.broker_id,
                                            create=settings.development))
        except FileNotFoundError as e:
            raise ConfigError(str(e)) from e
        yield trail
    finally:
        engine.dispose()
