"""A small, faithful GOV.UK Notify on loopback: ``POST /v2/notifications/email``.

What Notify checks, it checks, and it answers as Notify documents (an
``errors`` list of ``{"error", "message"}`` and a ``status_code``):

- ``Authorization: Bearer <JWT>``, missing: 401 ``AuthError``;
- the JWT (read with joserfc, not the client's PyJWT): HS256 only, ``iss`` the
  service id and ``iat`` present, signed with the secret of the key whose
  service that is, ``iat`` within 30 s of the server's clock: else 403
  ``AuthError`` with Notify's messages;
- the body: ``email_address`` and ``template_id`` (a UUID of a template this
  service has), and a value for every ``((placeholder))`` in the template: else
  400 ``ValidationError`` / ``BadRequestError``;
- ``faults``: statuses to answer first, one each (429 ``RateLimitError``, 500
  ``Exception``), for the client's retries.

Sent e-mails (placeholders filled) are kept in ``sent``.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from federator.demo.serving import ServedApp, bind

SKEW_S = 30
PLACEHOLDER = re.compile(r"\(\(([^()]+)\)\)")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
FAULTS = {
    429: ("RateLimitError", "Exceeded rate limit for key type LIVE of 3000 requests per 60 "
                            "seconds"),
    500: ("Exception", "Internal server error"),
    503: ("Exception", "Service unavailable"),
}


@dataclass
class Template:
    subject: str = "((subject))"
    body: str = "((body))"


@dataclass
class FakeNotify:
    service_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    secret: str = field(default_factory=lambda: str(uuid.uuid4()))
    templates: dict[str, Template] = field(default_factory=dict)
    #: statuses to answer before any real handling, one per request
    faults: list[int] = field(default_factory=list)
    #: added to the server's clock (a Notify whose clock is ahead of ours)
    clock_offset_s: float = 0.0
    sent: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def api_key(self) -> str:
        return f"federator_kit_test-{self.service_id}-{self.secret}"

    def add_template(self, template: Template | None = None) -> str:
        template_id = str(uuid.uuid4())
        self.templates[template_id] = template or Template()
        return template_id

    # -- the checks, as plain functions of what arrived ---------------------------

    def authorise(self, header: str | None) -> tuple[int, str, str] | None:
        """``None`` when the bearer token is good; else (status, error, message)."""
        if not header or not header.startswith("Bearer "):
            return 401, "AuthError", "Unauthorized: authentication token must be provided"
        token = header[len("Bearer "):].strip()
        try:
            unverified = jwt.decode(token, OctKey.import_key(self.secret),
                                    algorithms=["HS256", "HS384", "HS512"])
        except JoseError:
            unverified = None
        try:
            header_part = json.loads(_b64(token.split(".")[0]))
        except (ValueError, IndexError):
            return 403, "AuthError", "Invalid token: signature, api token not found"
        if header_part.get("alg") != "HS256":
            return 403, "AuthError", "Invalid token: algorithm used is not HS256"
        if unverified is None:
            return 403, "AuthError", "Invalid token: API key not found"
        claims = unverified.claims
        if "iss" not in claims:
            return 403, "AuthError", "Invalid token: iss field not provided"
        if claims["iss"] != self.service_id:
            return 403, "AuthError", "Invalid token: service not found"
        if "iat" not in claims:
            return 403, "AuthError", "Invalid token: iat field not provided"
        now = time.time() + self.clock_offset_s
        if not isinstance(claims["iat"], int | float) or abs(now - claims["iat"]) > SKEW_S:
            return 403, "AuthError", ("Error: Your system clock must be accurate to within "
                                      "30 seconds")
        return None

    def validate(self, body: Any) -> tuple[int, str, str] | None:
        if not isinstance(body, dict):
            return 400, "ValidationError", "Invalid JSON supplied in POST data"
        for name in ("email_address", "template_id"):
            if name not in body:
                return 400, "ValidationError", f"{name} is a required property"
        if not isinstance(body["email_address"], str) or not EMAIL.match(body["email_address"]):
            return 400, "ValidationError", "email_address Not a valid email address"
        template_id = body["template_id"]
        if not isinstance(template_id, str) or not UUID.match(template_id):
            return 400, "ValidationError", "template_id is not a valid UUID"
        template = self.templates.get(template_id)
        if template is None:
            return 400, "BadRequestError", "Template not found"
        given = body.get("personalisation") or {}
        if not isinstance(given, dict):
            return 400, "ValidationError", "personalisation {} is not of type object"
        wanted = PLACEHOLDER.findall(template.subject + template.body)
        missing = sorted({w for w in wanted if w not in given})
        if missing:
            return 400, "BadRequestError", f"Missing personalisation: {', '.join(missing)}"
        return None

    # -- the app -------------------------------------------------------------------

    def app(self) -> Flask:
        app = Flask("fake-notify")

        @app.post("/v2/notifications/email")
        def email() -> Response:
            with self.lock:
                self.requests += 1
                fault = self.faults.pop(0) if self.faults else None
            if fault is not None:
                return _error(fault, *FAULTS[fault])
            refused = self.authorise(request.headers.get("Authorization"))
            if refused:
                return _error(*refused)
            body = request.get_json(silent=True)
            refused = self.validate(body)
            if refused:
                return _error(*refused)
            template_id = body["template_id"]
            template = self.templates[template_id]
            values = {k: str(v) for k, v in body["personalisation"].items()} \
                if body.get("personalisation") else {}
            fill = lambda text: PLACEHOLDER.sub(lambda m: values[m.group(1)], text)  # noqa: E731
            notification = {"id": str(uuid.uuid4()), "reference": body.get("reference"),
                            "content": {"subject": fill(template.subject),
                                        "body": fill(template.body),
                                        "from_email": "kit.service@notifications.service.gov.uk"},
                            "uri": f"{request.host_url}v2/notifications/x",
                            "template": {"id": template_id, "version": 1,
                                         "uri": f"{request.host_url}v2/template/{template_id}"}}
            with self.lock:
                # all that arrived, as Notify would hold it (not only the template's fields)
                self.sent.append({"to": body["email_address"], "request": body,
                                  **notification})
            return Response(json.dumps(notification), status=201,
                            content_type="application/json")

        return app


def _error(status: int, error: str, message: str) -> Response:
    return Response(json.dumps({"errors": [{"error": error, "message": message}],
                                "status_code": status}),
                    status=status, content_type="application/json")


def _b64(segment: str) -> bytes:
    import base64
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def serve(fake: FakeNotify) -> Iterator[tuple[FakeNotify, ServedApp]]:
    served = bind(0).start(fake.app())
    try:
        yield fake, served
    finally:
        served.stop()
