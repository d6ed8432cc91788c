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
from opentelemetry import trace
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from adapters.kit.audit import AuditLog
from adapters.kit.govuk_notify import make_sender
from adapters.kit.keys import BrokerKeys, KeysUnavailable, jwks_session
from adapters.kit.matching import MatchResult, match_child
from adapters.kit.model import DEFAULT_MODEL, MatchModel, load_model
from adapters.kit.notify import (
    NONE_SHARED,
    NOTICE_ONLY,
    SHARED,
    UNSEEN,
    WITHHELD,
    Notifier,
    notification_for,
    what_we_sent,
)
from adapters.kit.policy import apply_policy, basis_allows_sensitive, is_current
from adapters.kit.record_ref import development_key, record_ref
from adapters.kit.replay import make_replay_guard
from adapters.kit.settings import KitSettings
from adapters.kit.sources import (
    ChildRecord,
    CsvSource,
    Involvement,
    Source,
    SourceError,
    SqlSource,
)
from adapters.kit.tracing import trace_lookups
from adapters.kit.witness import Witness, make_witness
from adapters.protocol import (
    CHECKPOINT_HEADER,
    PROTOCOL,
    RequestRefused,
    WireRequest,
    verify_request,
)
from adapters.tracing import Tracing, make_tracing, note

log = logging.getLogger("adapters.kit")
#: The kit's own audit says why a matched child was answered as not known.
UNSEEN_REASON = "known only through sensitive services the basis does not cover: " \
                "answered as not known"
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


def kit_model(settings: KitSettings) -> MatchModel:
    """The m/u values: ``match_model_path``'s file (checked with the settings), or
    the documented defaults."""
    return load_model(settings.match_model_path) if settings.match_model_path else DEFAULT_MODEL


def record_ref_key(settings: KitSettings) -> bytes:
    if settings.record_ref_key:
        return settings.record_ref_key.encode()
    log.warning("record_ref_key is not set (nor KIT_RECORD_REF_KEY): record references are "
                "derived from the authority id, which is not secret; set a key of 32 "
                "characters or more outside development")
    return development_key(settings.authority_id)


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
    tracing: Tracing | None = None,
) -> Flask:
    """The adapter app for one authority; every dependency may be injected for tests."""
    source = source if source is not None else make_source(settings)
    keys = keys if keys is not None else BrokerKeys(
        settings.jwks_url, session=jwks_session(settings.ca_file))
    replay = replay if replay is not None else make_replay_guard(
        settings.redis_url, authority_id=settings.authority_id
    )
    audit = AuditLog(settings.audit_log_path)
    notifier = notifier if notifier is not None else make_notifier(settings)
    witness = witness if witness is not None else make_witness(settings, keys)

    tracing = tracing if tracing is not None else make_tracing(
        "federator-kit", endpoint=settings.otlp_endpoint)
    model = kit_model(settings)
    ref_key = record_ref_key(settings)

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["federator_kit"] = {"settings": settings, "source": source, "keys": keys,
                                       "notifier": notifier, "model": model,
                                       "witness": witness, "tracing": tracing}
    if tracing.enabled:
        trace_lookups(app, tracing, settings.authority_id)

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
            verified = verify_request(
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

        note(trace.get_current_span(), lookup_id=wire["lookup_id"])
        if settings.simulate_delay_ms:
            sleep(settings.simulate_delay_ms / 1000)

        try:
            records = source.records()
        except SourceError as e:
            log.error("authority data unavailable: %s", type(e).__name__)
            return _error(503, "authority data unavailable")

        answer, record = answer_and_record(wire, records, settings, today=today(),
                                           model=model, ref_key=ref_key)
        note(trace.get_current_span(), outcome=answer["status"],
             professionals=len(answer.get("professionals") or ()))
        basis_type = wire["basis"].get("type")
        requester = wire["requester"]
        log.info("lookup %s status=%s organisation=%s basis=%s request_id=%s",
                 wire["lookup_id"], answer["status"], requester.get("organisation"),
                 basis_type, _request_id())
        unseen = record is not None and answer["status"] != "match" \
            and answer["status"] != "declined"
        audit.record(
            lookup_id=wire["lookup_id"], requester_id=requester.get("id"),
            requester_organisation=requester.get("organisation"),
            basis_type=basis_type if isinstance(basis_type, str) else None,
            outcome=answer["status"], reason=UNSEEN_REASON if unseen else None,
        )
        if record is not None and answer["status"] != "declined":
            # the token's expiry is past: the broker stopped waiting long before
            late = time.time() > verified.expires
            tell_workers(notifier, settings, wire, record, answer, today=today(), late=late)
        return jsonify(answer)

    return app


def make_notifier(settings: KitSettings) -> Notifier | None:
    send = make_sender(settings) if settings.notify != "off" else None
    if send is None:
        return None
    return Notifier(send, mode=settings.notify,
                    sender=settings.notify_from, max_queue=settings.notify_queue,
                    digest_s=settings.notify_digest_s)


def tell_workers(notifier: Notifier | None, settings: KitSettings, wire: dict[str, Any],
                 record: ChildRecord, answer: dict[str, Any], *, today: date,
                 late: bool = False) -> None:
    """Queue the e-mails (never blocks): to the child's worker (or the team mailbox)
    when the answer said the child is known, and to each current sensitive service
    held back for want of a covering basis, each saying what the kit actually sent."""
    if notifier is None:
        return
    at = datetime.now(UTC).isoformat(timespec="seconds")
    fallback = record.worker_email or settings.team_mailbox
    shared = len(answer.get("professionals") or [])
    told: dict[str, str] = {}  # recipient -> what we sent, in words
    withheld = withheld_involvements(record, wire["basis"], today=today)
    if answer["status"] == "match":
        kind = SHARED if shared else NOTICE_ONLY if answer.get("notice") else NONE_SHARED
        if fallback:
            told[fallback] = what_we_sent(kind, authority=settings.name, count=shared,
                                          late=late)
    kind = WITHHELD if answer["status"] == "match" else UNSEEN
    # the withheld services' own workers hear what was not shared (answered as not
    # known and none current: the child's worker, or the team mailbox)
    for to in [inv.email or fallback for inv in withheld] or (
            [fallback] if kind == UNSEEN else []):
        if to:
            told[to] = what_we_sent(kind, authority=settings.name, count=shared, late=late)
    if not told:
        log.info("lookup %s matched a child with no worker_email and no team_mailbox: "
                 "nobody to notify", wire["lookup_id"])
    for to, words in told.items():
        notifier.submit(notification_for(wire, to=to, child_ref=record.child_ref,
                                         authority_name=settings.name, at=at, told=words))


def withheld_involvements(record: ChildRecord, basis: dict[str, Any], *, today: date
                          ) -> list[Involvement]:
    """The current sensitive involvements this basis held back (their workers are told)."""
    if record.shielded or basis_allows_sensitive(basis):
        return []
    return [inv for inv in record.involvements if inv.sensitive and is_current(inv, today)]


def answer_and_record(wire: dict[str, Any], records: list[Any], settings: KitSettings, *,
                      today: date, model: MatchModel = DEFAULT_MODEL,
                      ref_key: bytes | None = None) -> tuple[dict[str, Any], ChildRecord | None]:
    """The answer body, and the matched child's record (for the notification).

    A match carries ``record_ref`` and ``matched_on``; a possible match
    (no_match with the notice) ``matched_on`` and ``ask_for``."""
    result = _match(wire, records, settings, model)
    answer = _answer(wire, result)
    if result.candidate is not None and apply_policy(
            result.candidate, wire["basis"], include_past=wire["include_past"],
            today=today, authority=settings.name).unseen:
        # A possible match with a child known here only through services this basis
        # does not cover: "contact us to confirm" would reveal that involvement.
        return _answer(wire, _match(wire, [], settings, model)), None
    if result.status == "match" and result.record is not None:
        outcome = apply_policy(
            result.record, wire["basis"], include_past=wire["include_past"],
            today=today, authority=settings.name,
        )
        if outcome.unseen:
            # Known here only through services this basis does not cover: the answer
            # a child not known here gets, made the same way (never revealed otherwise).
            return _answer(wire, _match(wire, [], settings, model)), result.record
        answer.update(status=outcome.status, professionals=outcome.professionals,
                      notice=outcome.notice or result.notice)  # e.g. moved house
        if outcome.status == "match":  # not "declined"
            key = ref_key if ref_key is not None else development_key(settings.authority_id)
            answer.update(record_ref=record_ref(key, result.record.child_ref),
                          matched_on=list(result.matched_on))
        return answer, result.record
    return answer, None


def _match(wire: dict[str, Any], records: list[Any], settings: KitSettings,
           model: MatchModel) -> MatchResult:
    return match_child(
        wire["child"], records,
        match_threshold=settings.match_threshold,
        possible_threshold=settings.possible_threshold,
        authority=settings.name,
        moved_house=settings.moved_house,
        model=model,
    )


def _answer(wire: dict[str, Any], result: MatchResult) -> dict[str, Any]:
    """The answer before policy: every answer, the not-known one too, is made here."""
    answer: dict[str, Any] = {
        "lookup_id": wire["lookup_id"],
        "status": result.status,
        "confidence": result.confidence,
        "professionals": [],
        "notice": result.notice,
    }
    if result.status != "match" and result.notice:  # a possible match
        answer.update(matched_on=list(result.matched_on), ask_for=list(result.ask_for))
    return answer


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
