"""The answer of a ``fhir-r4`` lookup, with the kit's policy and matching: the
part of :class:`adapters.fhir_r4.FhirR4Client` that decides, over the FHIR REST
calls the client makes (``_search``, ``_get``, ``_professionals``).

- the child's Patient (:mod:`adapters.fhir_match`): by NHS number, else by
  ``Patient/$match`` when the CapabilityStatement offers it, else by searches
  scored by the kit's matching;
- a restricted record (:mod:`adapters.fhir_policy`): the registry's route and
  nobody; a child known only through sensitive services the basis does not
  cover, and a possible match with one: the not-known answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from adapters.base import AdapterError, Reply, Target
from adapters.fhir_match import (
    NHS_NUMBER_SYSTEM,
    NOT_FOUND,
    Found,
    by_nhs_number,
    demographic_searches,
    graded,
    judge_match,
    judge_search,
    match_parameters,
    offers_match,
)
from adapters.fhir_policy import is_restricted, policy_for, restricted_notice
from adapters.fhir_tokens import TokenCache
from adapters.kit.normalise import normalise_nhs_number
from adapters.kit.policy import basis_allows_sensitive

#: How long the client keeps whether a server offers ``Patient/$match``.
CAPABILITY_TTL_S = 3600
NOT_CONFIDENT = ("More than one record may be this child, so none is shared. Please contact "
                 "the service to confirm the child's identity.")


class FhirAnswering:
    """Mixed into :class:`~adapters.fhir_r4.FhirR4Client`, which provides these."""

    tokens: TokenCache
    _search: Callable[..., list[dict[str, Any]]]
    _get: Callable[..., Reply]
    _post_json: Callable[..., Any]
    _professionals: Callable[..., tuple[list[dict[str, Any]], bool]]

    def _answer(self, target: Target, payload: Mapping[str, Any], deadline: float
                ) -> dict[str, Any]:
        """The answer, with the kit's policy (:mod:`adapters.fhir_policy`): a restricted
        record gets the registry's route and nobody; a child known here only through
        sensitive services the basis does not cover gets the not-known answer."""
        lookup_id = str(payload["lookup_id"])
        child = payload.get("child") or {}
        basis = payload.get("basis") if isinstance(payload.get("basis"), dict) else {}
        include_past = bool(payload.get("include_past"))
        try:
            policy = policy_for(target.policy, authority=target.name)
        except ValueError as e:
            raise AdapterError(f"the endpoint's policy: {e}") from e
        not_known: dict[str, Any] = {"lookup_id": lookup_id, "status": "no_match",
                                     "confidence": 0.0, "professionals": []}
        found = self._find(target, child, deadline, policy.authority)
        if found.status == "none" or found.patient is None:
            return not_known
        if found.status == "possible":
            # "contact us to confirm" would say the child is known here: not when that
            # is only through services this basis does not cover (the kit's rule)
            if not basis_allows_sensitive(basis) and not is_restricted(found.patient, policy) \
                    and self._professionals(target, found.patient, deadline, policy, basis,
                                            include_past)[1]:
                return not_known
            return {**not_known, "confidence": found.confidence, "notice": found.notice,
                    "matched_on": list(found.matched_on), "ask_for": list(found.ask_for)}
        matched = {"lookup_id": lookup_id, "status": "match", "confidence": found.confidence,
                   "matched_on": list(found.matched_on), "professionals": []}
        if is_restricted(found.patient, policy):
            return {**matched, "notice": restricted_notice(policy)}
        people, unseen = self._professionals(target, found.patient, deadline, policy, basis,
                                             include_past)
        return not_known if unseen else {**matched, "professionals": people}

    def _find(self, target: Target, child: Mapping[str, Any], deadline: float,
              authority: str) -> Found:
        """The child's Patient (:mod:`adapters.fhir_match`)."""
        nhs = normalise_nhs_number(str(child.get("nhs_number") or ""))
        if nhs:
            found = by_nhs_number(nhs, self._search(
                target, "Patient", {"identifier": f"{NHS_NUMBER_SYSTEM}|{nhs}"}, deadline))
            if len(found) == 1:
                return Found("match", found[0], 1.0, ("nhs_number",))
            if found:
                return Found("possible", found[0], 0.5, ("nhs_number",), (), NOT_CONFIDENT)
        if not (child.get("given_name") or child.get("family_name")):
            return NOT_FOUND
        if self._offers_match(target, deadline):
            bundle = self._post_json(target, "/Patient/$match", match_parameters(child),
                                     deadline)
            if bundle is not None:
                if bundle.get("resourceType") != "Bundle":
                    raise AdapterError("Patient/$match did not return a Bundle")
                return judge_match(child, graded(bundle), authority=authority)
        patients: list[dict[str, Any]] = []
        for params in demographic_searches(child):
            patients.extend(self._search(target, "Patient", params, deadline))
        return judge_search(child, patients, authority=authority)

    def _offers_match(self, target: Target, deadline: float) -> bool:
        """Whether the CapabilityStatement offers ``Patient/$match`` (kept an hour)."""
        key = "fhir-match:" + hashlib.sha256(target.url.encode()).hexdigest()[:32]
        held = self.tokens.get(key)
        if held:
            return held == "yes"
        reply = self._get(target, "/metadata", deadline)
        try:
            offered = reply.status == 200 and offers_match(json.loads(reply.body))
        except (ValueError, UnicodeDecodeError):
            offered = False
        self.tokens.set(key, "yes" if offered else "no", CAPABILITY_TTL_S)
        return offered
