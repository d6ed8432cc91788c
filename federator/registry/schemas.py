"""The shape of an endpoint registration (API and CLI), and its safety checks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from federator.registry.urlguard import UnsafeURL, UrlGuard

BUILT_IN_PROTOCOLS = ("federator-lookup/1", "fhir-r4")
ENDPOINT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
GSS_CODE = re.compile(r"^[ENSWK]\d{8}$")
ORG_CODE = re.compile(r"^[A-Z0-9]{3,9}$")
#: Credentials each protocol needs (a plug-in kind takes any string fields).
CREDENTIAL_FIELDS: dict[str, tuple[str, ...]] = {
    "federator-lookup/1": (),
    "fhir-r4": ("token_url", "client_id", "client_secret"),
}


def protocols() -> tuple[str, ...]:
    """Built-in kinds and every installed ``federator.adapters`` plug-in."""
    names = {ep.name for ep in entry_points(group="federator.adapters")}
    return tuple(sorted(set(BUILT_IN_PROTOCOLS) | names))


def _coverage(value: list[str]) -> None:
    if not value:
        raise ValidationError("Give at least one GSS code, or [\"national\"].")
    if "national" in value:
        if value != ["national"]:
            raise ValidationError("\"national\" cannot be combined with area codes.")
        return
    bad = [c for c in value if not GSS_CODE.match(c)]
    if bad:
        raise ValidationError(f"Not GSS codes: {', '.join(bad[:5])}.")


def _protocol(value: str) -> None:
    if value not in protocols():
        raise ValidationError(f"Must be one of: {', '.join(protocols())}.")


class EndpointSchema(Schema):
    class Meta:
        unknown = RAISE

    id = fields.String(validate=validate.Regexp(
        ENDPOINT_ID, error="Lower-case letters, digits and hyphens, up to 64."))
    name = fields.String(required=True, validate=validate.Length(min=2, max=200))
    code = fields.String(required=True, validate=validate.Regexp(
        ORG_CODE, error="A GSS code (E08000035) or an ODS code (RXX)."))
    coverage = fields.List(fields.String(), required=True, validate=_coverage)
    protocol = fields.String(required=True, validate=lambda v: _protocol(v))
    url = fields.String(required=True, validate=validate.Length(min=1, max=500))
    timeout_ms = fields.Integer(load_default=3000, validate=validate.Range(min=100, max=60000))
    contact = fields.String(load_default="", validate=validate.Length(max=500))
    credentials = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=100)),
                              values=fields.String(validate=validate.Length(min=1, max=2000)),
                              load_default=None, allow_none=True)


class ReviewSchema(Schema):
    class Meta:
        unknown = RAISE

    reason = fields.String(load_default=None, allow_none=True,
                           validate=validate.Length(max=2000))


def safety_errors(endpoint: Mapping[str, Any], guard: UrlGuard, *,
                  check_url: bool = True, check_credentials: bool = True) -> dict[str, Any]:
    """Field errors for an unsafe ``url``, and for credentials the protocol needs
    (including an unsafe ``token_url``). Resolves host names through the guard."""
    errors: dict[str, Any] = {}
    if check_url:
        try:
            guard.check(endpoint["url"])
        except UnsafeURL as e:
            errors["url"] = [str(e)]
    if not check_credentials:
        return errors
    protocol = endpoint["protocol"]
    given = endpoint.get("credentials") or {}
    needed = CREDENTIAL_FIELDS.get(protocol)
    problems: dict[str, list[str]] = {}
    if needed == () and given:
        errors["credentials"] = [f"{protocol} uses signed requests; it takes no credentials."]
        return errors
    for name in needed or ():
        if not given.get(name):
            problems[name] = ["Missing data for required field."]
    if given.get("token_url") and "token_url" not in problems:
        try:
            guard.check(given["token_url"])
        except UnsafeURL as e:
            problems["token_url"] = [str(e)]
    if problems:
        errors["credentials"] = problems
    return errors
