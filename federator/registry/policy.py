"""An endpoint's ``policy`` (``fhir-r4`` only): the sensitive value set, restricted
labels and the route for a restricted record (:mod:`adapters.fhir_policy`,
docs/fhir.md). Its schema (field errors, never a 500), its canonical form (so a
change is seen as one), and whether a change shares more than before."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError, fields, post_load, validate

from adapters.fhir_policy import parse_coding, restricted_labels, sensitive_codes
from federator.inputs import InputSchema, Text

MAX_CODES = 200
MAX_LABELS = 50
POLICY_PROTOCOLS = ("fhir-r4",)


def _coding(value: str) -> None:
    try:
        parse_coding(value)
    except ValueError as e:
        raise ValidationError(str(e)) from e


def _token(value: str) -> str:
    system, code = parse_coding(value)
    return f"{system}|{code}"


class PolicySchema(InputSchema):
    #: the documented default sensitive value set applies (false: only ``sensitive_codes``)
    include_default = fields.Boolean(load_default=True)
    sensitive_codes = fields.List(Text(max_length=300, validate=_coding), load_default=list,
                                  validate=validate.Length(max=MAX_CODES,
                                                           error=f"At most {MAX_CODES} codes."),
        metadata={"description": "system|code, or a bare SNOMED CT concept id"})
    restricted_labels = fields.List(Text(max_length=300, validate=_coding), load_default=list,
                                    validate=validate.Length(
                                        max=MAX_LABELS, error=f"At most {MAX_LABELS} labels."),
        metadata={"description": "system|code of meta.security labels that restrict, "
                                 "besides v3-Confidentiality R and V"})
    restricted_route = Text(max_length=500, load_default="",
                            metadata={"description": "who a practitioner contacts about a "
                                                     "restricted record"})

    @post_load
    def _canonical(self, data: dict[str, Any], **_: Any) -> dict[str, Any] | None:
        return canonical(data)


def canonical(data: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The policy as stored: codes as ``system|code``, sorted, no defaults; None
    when it says nothing the defaults do not."""
    if not data:
        return None
    out: dict[str, Any] = {}
    if data.get("include_default", True) is False:
        out["include_default"] = False
    for key in ("sensitive_codes", "restricted_labels"):
        codes = sorted({_token(c) for c in data.get(key) or ()})
        if codes:
            out[key] = codes
    route = str(data.get("restricted_route") or "").strip()
    if route:
        out["restricted_route"] = route
    return out or None


def policy_errors(protocol: str, policy: Any) -> dict[str, list[str]]:
    if policy and protocol not in POLICY_PROTOCOLS:
        return {"policy": [f"{protocol} endpoints apply their own policy; a policy is "
                           f"registered only for {', '.join(POLICY_PROTOCOLS)}."]}
    return {}


def shares_more(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[str]:
    """What a new policy no longer holds back: sensitive codes and restricted labels
    the old one had (each, in words). Empty: it shares nothing more."""
    lost = sorted(sensitive_codes(old) - sensitive_codes(new))
    unlabelled = sorted(restricted_labels(old) - restricted_labels(new))
    said = []
    if lost:
        codes = ", ".join(code for _, code in lost[:10])
        more = f" and {len(lost) - 10} more" if len(lost) > 10 else ""
        said.append(f"sensitive codes no longer held back: {codes}{more}")
    if unlabelled:
        said.append("restricted labels no longer honoured: "
                    + ", ".join(f"{s}|{c}" for s, c in unlabelled[:10]))
    return said
