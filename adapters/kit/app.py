"""The kit's HTTP face: ``GET /health`` and ``POST /lookup`` (``federator-lookup/1``)."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from flask import Flask, Response, jsonify, request
from joserfc.jwk import KeySet
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from adapters.kit.audit import AuditLog
from adapters.kit.keys import BrokerKeys, KeysUnavailable
from adapters.kit.matching import match_child
from adapters.kit.notify import Notifier, notification_for, smtp_sender
from adapters.kit.policy import apply_policy
from adapters.kit.replay import make_replay_guard
from adapters.kit.settings import KitSettings
from adapters.kit.sources import ChildRecord, CsvSource, Source, SourceError, SqlSource
from adapters.kit.witness import Witness, make_witness
from adapters.protocol import (
    CHECKPOINT_HEADER,
    PROTOCOL,
    RequestRefused,
    WireRequest,
    verify_request,
)

log = logging.getLogger("adapters.kit")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}\Z")  # \Z: "$" would let a final \n in

KeyProvider = Callable[[str | None], KeySet]
ReplayCheck = Callable[[str, int], bool]


def make_source(settings: KitSettings) -> Source:
    if settings.source == "sql":
        assert settings.sql_url and settings.sql_query
        return SqlSource(settings.sql_url, settings.sql_query)
    assert settings.csv_path
    return CsvSource(settings.csv_path)


def _request_id() -> str | None:
    """The broker's ``X-Request-Id`` when well formed (never an arbitrary string in a log)."""
    given = request.headers.get("X-Request-Id", "")
    return given if _REQUEST_ID.match(given) else None


def _error(status: int, message: str, **extra: Any) -> Response:
    response = jsonify({"error": message, **extra})
    response.status_code = status
    return response


def create_kit_app(
    settings: KitSettings,
    *,
    source: Source | None = None,
    keys: KeyProvider | None = None,
    replay: ReplayCheck | None = None,
    today: Callable[[], date] = date.today,
    sleep: Callable[[float], None] = time.sleep,
    notifier: Notifier | None = None,
    witness: Witness | None = None,
) -> Flask:
    """The adapter app for one authority; every dependency may be injected for tests."""
    source = source if source is not None else make_source(settings)
    keys = keys if keys is not None else BrokerKeys(settings.jwks_url)
    replay = replay if replay is not None else make_replay_guard(
        settings.redis_url, authority_id=settings.authority_id
    )
    audit = AuditLog(settings.audit_log_path)
    notifier = notifier if notifier is not None else make_notifier(settings)
    witness = witness if witness is not None else make_witness(settings, keys)

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["federator_kit"] = {"settings": settings, "source": source, "keys": keys,
                                       "notifier": notifier, "witness": witness}

    @app.after_request
    def no_store(response: Response) -> Response:
        response.headers["Cache-Control"] = "no-store"
        if request_id := _request_id():  # the broker's, echoed for its logs
            response.headers["X-Request-Id"] = request_id
        return response

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> Response:
        return _error(e.code or 500, (e.name or "error").lower())

    @app.errorhandler(Exception)
    def unexpected(e: Exception) -> Response:
        # The exception's message could hold request data: log its type only.
        log.error("unexpected error: %s", type(e).__name__)
        return _error(500, "internal server error")

    @app.get("/health")
    def health() -> Response:
        return jsonify({"status": "ok", "protocol": PROTOCOL,
                        "authority": settings.authority_id, "witness": witness.status()})

    @app.post("/lookup")
    def lookup() -> Response:
        if (request.content_length or 0) > settings.max_body_bytes:
            return _error(413, "request body too large")
        try:
            body = request.get_data(cache=False)
        except RequestEntityTooLarge:
            return _error(413, "request body too large")
        if len(body) > settings.max_body_bytes:
            return _error(413, "request body too large")

        try:
            verify_request(
                request.headers.get("Authorization"), body,
                keys=keys, audience=settings.authority_id,
                issuer=settings.broker_issuer, seen_before=replay,
            )
        except RequestRefused as e:
            log.info("lookup refused: %s", e.reason)
            audit.record(lookup_id=None, requester_id=None, requester_organisation=None,
                         basis_type=None, outcome="refused", reason=e.reason)
            response = _error(401, e.reason)
            response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            return response
        except KeysUnavailable:
            log.error("cannot fetch the broker's keys from %s", settings.jwks_url)
            return _error(503, "cannot verify requests: broker keys unavailable")
        witness.offer(request.headers.get(CHECKPOINT_HEADER))  # checked off the answer's path

        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _error(400, "body is not valid JSON")
        if not isinstance(data, dict):
            return _error(400, "body must be a JSON object")
        try:
            wire = WireRequest().load(data)
        except ValidationError as e:
            return _error(400, "invalid request: " + ", ".join(_field_names(e.messages)),
                          fields=e.messages)

        if settings.simulate_delay_ms:
            sleep(settings.simulate_delay_ms / 1000)

        try:
            records = source.records()
        except SourceError as e:
            log.error("authority data unavailable: %s", type(e).__name__)
            return _error(503, "authority data unavailable")

        answer, record = answer_and_record(wire, records, settings, today=today())
        basis_type = wire["basis"].get("type")
        requester = wire["requester"]
        log.info("lookup %s status=%s organisation=%s basis=%s request_id=%s",
                 wire["lookup_id"], answer["status"], requester.get("organisation"),
                 basis_type, _request_id())
        audit.record(
            lookup_id=wire["lookup_id"], requester_id=requester.get("id"),
            requester_organisation=requester.get("organisation"),
            basis_type=basis_type if isinstance(basis_type, str) else None,
            outcome=answer["status"],
        )
        if answer["status"] == "match" and record is not None:
            tell_worker(notifier, settings, wire, record)
        return jsonify(answer)

    return app


def make_notifier(settings: KitSettings) -> Notifier | None:
    if settings.notify == "off" or not settings.smtp_url:
        return None
    return Notifier(smtp_sender(settings.smtp_url), mode=settings.notify,
                    sender=settings.notify_from, max_queue=settings.notify_queue,
                    digest_s=settings.notify_digest_s)


def tell_worker(notifier: Notifier | None, settings: KitSettings, wire: dict[str, Any],
                record: ChildRecord) -> None:
    """Queue the e-mail to the child's worker (or the team mailbox); never blocks."""
    if notifier is None:
        return
    to = record.worker_email or settings.team_mailbox
    if not to:
        log.info("lookup %s matched a child with no worker_email and no team_mailbox: "
                 "nobody to notify", wire["lookup_id"])
        return
    notifier.submit(notification_for(
        wire, to=to, child_ref=record.child_ref, authority_name=settings.name,
        at=datetime.now(UTC).isoformat(timespec="seconds")))


def answer_lookup(wire: dict[str, Any], records: list[Any], settings: KitSettings, *,
                  today: date) -> dict[str, Any]:
    """Match and apply policy: the answer body for a validated wire request."""
    return answer_and_record(wire, records, settings, today=today)[0]


def answer_and_record(wire: dict[str, Any], records: list[Any], settings: KitSettings, *,
                      today: date) -> tuple[dict[str, Any], ChildRecord | None]:
    """The answer body, and the matched child's record (for the notification)."""
    result = match_child(
        wire["child"], records,
        match_threshold=settings.match_threshold,
        possible_threshold=settings.possible_threshold,
        authority=settings.name,
        moved_house=settings.moved_house,
    )
    answer: dict[str, Any] = {
        "lookup_id": wire["lookup_id"],
        "status": result.status,
        "confidence": result.confidence,
        "professionals": [],
        "notice": result.notice,
    }
    if result.status == "match" and result.record is not None:
        outcome = apply_policy(
            result.record, wire["basis"], include_past=wire["include_past"],
            today=today, authority=settings.name,
        )
        answer.update(status=outcome.status, professionals=outcome.professionals,
                      notice=outcome.notice or result.notice)  # e.g. moved house
        return answer, result.record
    return answer, None


def _field_names(messages: Any, prefix: str = "") -> list[str]:
    if not isinstance(messages, dict):
        return [prefix.rstrip(".") or "body"]
    names: list[str] = []
    for key, value in messages.items():
        if isinstance(value, dict):
            names.extend(_field_names(value, f"{prefix}{key}."))
        else:
            names.append(f"{prefix}{key}")
    return names
