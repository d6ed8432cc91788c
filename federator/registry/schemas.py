"""The shape of an endpoint registration (API and CLI), and its safety checks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from marshmallow import ValidationError, fields, validate

from federator.inputs import InputSchema, Text
from federator.registry.policy import PolicySchema, policy_errors
from federator.registry.urlguard import UnsafeURL, UrlGuard

BUILT_IN_PROTOCOLS = ("federator-lookup/1", "fhir-r4")
ENDPOINT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}\Z")
GSS_CODE = re.compile(r"^[ENSWK]\d{8}\Z")
ORG_CODE = re.compile(r"^[A-Z0-9]{3,9}\Z")
#: Credentials each protocol needs (a plug-in kind takes any string fields).
CREDENTIAL_FIELDS: dict[str, tuple[str, ...]] = {
    "federator-lookup/1": (),
    "fhir-r4": ("token_url", "client_id", "client_secret"),
}
#: fhir-r4 with ``auth = "smart_backend"`` (adapters/smart_auth.py): a private key
#: instead of a secret; without ``token_url`` it is discovered from the server.
SMART_CREDENTIAL_FIELDS = ("client_id", "private_key")


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


class EndpointSchema(InputSchema):
    id = Text(max_length=64, validate=validate.Regexp(
        ENDPOINT_ID, error="Lower-case letters, digits and hyphens, up to 64."))
    name = Text(max_length=200, required=True, validate=validate.Length(min=2))
    code = Text(max_length=50, required=True, validate=validate.Regexp(
        ORG_CODE, error="A GSS code (E08000035) or an ODS code (RXX)."))
    coverage = fields.List(Text(max_length=20), required=True, validate=[
        validate.Length(max=500, error="At most 500 areas."), _coverage])
    protocol = Text(max_length=100, required=True, validate=lambda v: _protocol(v))
    url = Text(max_length=500, required=True, validate=validate.Length(min=1))
    timeout_ms = fields.Integer(load_default=3000, validate=validate.Range(min=100, max=60000))
    contact = Text(max_length=500, multiline=True, load_default="", free_text=True)
    credentials = fields.Dict(keys=Text(max_length=100, validate=validate.Length(min=1)),
                              values=Text(max_length=8000,  # an RSA private JWK
                                          validate=validate.Length(min=1)),
                              load_default=None, allow_none=True)
    #: fhir-r4 only: sensitive value set, restricted labels, restricted route (docs/fhir.md)
    policy = fields.Nested(PolicySchema, load_default=None, allow_none=True)


class ReviewSchema(InputSchema):
    reason = Text(max_length=2000, multiline=True, load_default=None, allow_none=True,
                  free_text=True)
    #: the endpoint's ``version`` as the reviewer read it: refused (409) if it changed
    version = Text(max_length=64, load_default=None, allow_none=True)


def safety_errors(endpoint: Mapping[str, Any], guard: UrlGuard, *,
                  check_url: bool = True, check_credentials: bool = True) -> dict[str, Any]:
    """Field errors for an unsafe ``url``, and for credentials the protocol needs
    (including an unsafe ``token_url``). Resolves host names through the guard."""
    errors: dict[str, Any] = dict(policy_errors(endpoint["protocol"], endpoint.get("policy")))
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
    if protocol == "fhir-r4" and given:
        needed = _fhir_needs(given, problems)
    for name in needed or ():
        if not given.get(name) and name not in problems:
            problems[name] = ["Missing data for required field."]
    if given.get("token_url") and "token_url" not in problems:
        try:
            guard.check(given["token_url"])
        except UnsafeURL as e:
            problems["token_url"] = [str(e)]
    if problems:
        errors["credentials"] = problems
    return errors


def _fhir_needs(given: Mapping[str, str], problems: dict[str, list[str]]) -> tuple[str, ...]:
    """The fields a fhir-r4 endpoint's chosen ``auth`` needs; a SMART private key
    that cannot sign, or a staged next key (``next_private_key``, ``next_from``)
    that is not usable, goes into ``problems`` (the message never repeats the key)."""
    from adapters.smart_auth import (
        SMART_BACKEND,
        SmartKeyError,
        auth_method,
        signing_key,
        staged_key_problems,
    )

    problems.update(staged_key_problems(given))
    try:
        method = auth_method(given)
    except ValueError as e:
        problems["auth"] = [str(e)]
        return CREDENTIAL_FIELDS["fhir-r4"]
    if method != SMART_BACKEND:
        return CREDENTIAL_FIELDS["fhir-r4"]
    if given.get("private_key"):
        try:
            signing_key(given["private_key"])
        except SmartKeyError as e:
            problems["private_key"] = [str(e)]
    return SMART_CREDENTIAL_FIELDS
