"""The broker's client for FHIR R4 (UK Core) endpoints: protocol ``fhir-r4``.

One lookup is a few FHIR searches, all within the lookup's deadline:

1. the Patient, by ``identifier=https://fhir.nhs.uk/Id/nhs-number|…``, or by
   family name, given name and birth date when there is no NHS number (a
   demographic hit must agree exactly once names are normalised);
2. its CareTeams (participants) and EpisodeOfCares (care managers), asking
   the server to ``_include`` the Practitioner, PractitionerRole and
   Organization they name, and fetching by id whatever it did not include,
   the CareTeams an EpisodeOfCare names in ``team`` among them;
3. the professionals mapped to the ``federator-lookup/1`` answer shape and
   validated by the same :func:`adapters.protocol.parse_answer` as any adapter's.

The standard as servers speak it (docs/fhir.md, "What a FHIR server must
support / may support"): every search sends ``_count``; ``next`` links and
absolute references are followed on the registered base, its origin, or a base
the server declares (a Bundle's ``self`` link, ``CapabilityStatement.
implementation.url``), always asked on the registered base, never on another
server (:mod:`adapters.fhir_refs`); contained and versioned references are
read; an OperationOutcome's diagnostics are kept, without patient data
(:mod:`adapters.fhir_outcome`). What the budget or another server stops the
client reading makes a *partial* answer, named (:mod:`adapters.fhir_paging`):
what was read, a notice, and ``partial`` reasons, never an error.

Authentication (:mod:`adapters.fhir_auth`): OAuth2 client credentials from the
endpoint's ``credentials``, either with a ``client_secret`` (HTTP Basic;
``token_url``, ``client_id``, ``client_secret``, optional ``scope``) or, with
``auth = "smart_backend"``, SMART Backend Services. A 401 with a cached token
fetches a new one once.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import time
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any
from urllib.parse import urlencode, urlsplit

from adapters.base import AdapterError, Reply, Target
from adapters.fhir_auth import DISCOVERY_TTL_S, FhirAuth, _json_object, _token_key
from adapters.fhir_outcome import outcome_detail
from adapters.fhir_paging import PARTIAL_NOTICE, Reading, entries, link, self_base
from adapters.fhir_r4_mapping import demographics_agree, professionals_from, ref, references
from adapters.fhir_refs import normalise
from adapters.fhir_tokens import MemoryTokenCache, RedisTokenCache, TokenCache
from adapters.protocol import InvalidAnswer, parse_answer
from adapters.wire_professional import MAX_PROFESSIONALS

__all__ = ["FhirR4Client", "MemoryTokenCache", "RedisTokenCache", "TokenCache"]

PROTOCOL = "fhir-r4"
NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
FHIR_JSON = "application/fhir+json"
MAX_RESOLVE = 50
PAGE_SIZE = 50
NOT_CONFIDENT = ("More than one record may be this child, so none is shared. Please contact "
                 "the service to confirm the child's identity.")
#: The lookup in progress on this thread (the client serves many threads at once).
_READING: contextvars.ContextVar[Reading] = contextvars.ContextVar("fhir_reading")


class FhirR4Client(FhirAuth):
    protocol = PROTOCOL
    needs_credentials = True  # the broker passes the endpoint's decrypted credentials

    def __init__(self, *, tokens: TokenCache | None = None, max_pages: int = 10,
                 page_size: int = PAGE_SIZE, max_reads: int = MAX_RESOLVE,
                 max_professionals: int = MAX_PROFESSIONALS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tokens: TokenCache = tokens or MemoryTokenCache()
        self.max_pages = max_pages
        self.page_size = page_size
        self.max_reads = max_reads
        self.max_professionals = max_professionals

    @classmethod
    def from_context(cls, context: Any) -> FhirR4Client:
        """Built by :mod:`adapters.plugins` for the broker."""
        tokens = (RedisTokenCache(context.redis, context.redis_prefix)
                  if getattr(context, "redis", None) is not None else MemoryTokenCache())
        return cls(tokens=tokens, max_answer_bytes=context.max_answer_bytes,
                   max_professionals=getattr(context, "max_professionals", MAX_PROFESSIONALS),
                   user_agent=context.user_agent, resolve=getattr(context, "resolve", None))

    # -- the lookup -------------------------------------------------------------

    def lookup(self, target: Target, payload: Mapping[str, Any], *, deadline: float,
               request_id: str | None = None) -> dict[str, Any]:
        child = payload.get("child") or {}
        sent = [str(v) for k, v in child.items() if k != "postcodes" and v]
        sent += [str(p) for p in child.get("postcodes") or []]
        reading = Reading(target.url, self.max_pages, self.max_reads, tuple(sent))
        token = _READING.set(reading)
        try:
            return self._lookup(target, payload, deadline, reading)
        finally:
            _READING.reset(token)

    def _lookup(self, target: Target, payload: Mapping[str, Any], deadline: float,
                reading: Reading) -> dict[str, Any]:
        started = time.monotonic()
        lookup_id = str(payload["lookup_id"])
        child = payload.get("child") or {}
        patients = self._patients(target, child, deadline)
        if not patients:
            answer: dict[str, Any] = {"lookup_id": lookup_id, "status": "no_match",
                                      "confidence": 0.0, "professionals": []}
        elif len(patients) > 1 or reading.partial:  # cut pages may hold others
            answer = {"lookup_id": lookup_id, "status": "no_match", "confidence": 0.5,
                      "professionals": [], "notice": NOT_CONFIDENT}
        else:
            patient, confidence = patients[0]
            reading.sent += (str(patient.get("id") or ""),)
            people = self._professionals(target, patient, deadline,
                                         include_past=bool(payload.get("include_past")))
            answer = {"lookup_id": lookup_id, "status": "match", "confidence": confidence,
                      "professionals": people}
            if reading.outcome_partial():
                answer["notice"] = PARTIAL_NOTICE
        try:
            result = parse_answer(json.dumps(answer).encode(), lookup_id,
                                  max_professionals=self.max_professionals)
        except InvalidAnswer as e:  # pragma: no cover - our own mapping's shape
            raise AdapterError(str(e)) from e
        if partial := reading.outcome_partial():
            result["partial"] = partial
        result["latency_ms"] = int((time.monotonic() - started) * 1000)
        result["calls"] = reading.calls
        return result

    def _patients(self, target: Target, child: Mapping[str, Any], deadline: float
                  ) -> list[tuple[dict[str, Any], float]]:
        nhs = "".join(ch for ch in str(child.get("nhs_number") or "") if ch.isdigit())
        if nhs:
            found = self._search(target, "Patient",
                                 {"identifier": f"{NHS_NUMBER_SYSTEM}|{nhs}"}, deadline)
            return [(p, 1.0) for p in found if p.get("resourceType") == "Patient"]
        given, family = child.get("given_name"), child.get("family_name")
        born = child.get("date_of_birth")
        if not (given and family and born):
            return []
        found = self._search(target, "Patient",
                             {"family": family, "given": given, "birthdate": born}, deadline)
        return [(p, 0.9) for p in found if p.get("resourceType") == "Patient"
                and demographics_agree(p, given, family, born)]

    def _professionals(self, target: Target, patient: Mapping[str, Any], deadline: float,
                       *, include_past: bool) -> list[dict[str, Any]]:
        subject = f"Patient/{patient['id']}"
        known: dict[str, dict[str, Any]] = {}
        teams = self._search(target, "CareTeam", [
            ("patient", subject), ("_include", "CareTeam:participant"),
            ("_include:iterate", "PractitionerRole:practitioner")], deadline, known)
        episodes = self._search(target, "EpisodeOfCare", [
            ("patient", subject), ("_include", "EpisodeOfCare:care-manager"),
            ("_include", "EpisodeOfCare:organization")], deadline, known)
        teams = [t for t in teams if t.get("resourceType") == "CareTeam"]
        episodes = [e for e in episodes if e.get("resourceType") == "EpisodeOfCare"]
        teams += self._episode_teams(target, episodes, teams, subject, known, deadline)
        self._resolve(target, references(teams, episodes, known), known, deadline)
        people = list(professionals_from(teams, episodes, known, today=date.today()))
        return [p for p in people if include_past or p["current"]]

    def _episode_teams(self, target: Target, episodes: list[dict[str, Any]],
                       teams: list[dict[str, Any]], subject: str,
                       known: dict[str, dict[str, Any]], deadline: float
                       ) -> list[dict[str, Any]]:
        """The CareTeams an EpisodeOfCare names in ``team`` that the CareTeam search
        did not return (``CareTeam.subject`` is optional), read by id or taken from
        the episode's contained resources; one about another patient is left out."""
        have = {f"CareTeam/{t.get('id')}" for t in teams}
        found: list[dict[str, Any]] = []
        for episode in episodes:
            for wanted in filter(None, (ref(t) for t in episode.get("team") or [])):
                if wanted in have or not wanted.split("#")[0].startswith(
                        ("CareTeam/", "EpisodeOfCare/")):
                    continue
                have.add(wanted)
                if wanted not in known:
                    self._resolve(target, iter([wanted]), known, deadline, follow=False)
                team = known.get(wanted) or {}
                about = ref(team.get("subject"))
                if team.get("resourceType") == "CareTeam" and about in (None, subject):
                    found.append(team)
        return found

    # -- FHIR REST ----------------------------------------------------------------

    def _search(self, target: Target, kind: str, params: Mapping[str, str] | list[
                tuple[str, str]], deadline: float, known: dict[str, dict[str, Any]] | None = None,
                ) -> list[dict[str, Any]]:
        """Every matched resource over every page (at most ``max_pages``, each of
        ``_count`` entries); included ones go to ``known``. References come back
        rewritten to keys (:func:`adapters.fhir_refs.normalise`)."""
        reading = _READING.get()
        query = [*(params.items() if isinstance(params, Mapping) else params),
                 ("_count", str(self.page_size))]
        where: tuple[str, str] | None = ("base", f"/{kind}?{urlencode(query)}")
        matches: list[dict[str, Any]] = []
        pages = 0
        while where is not None:
            if pages >= self.max_pages:
                reading.page_cap(kind)
                break
            pages += 1
            bundle = self._get_json(target, where[1], deadline, on_origin=where[0] == "origin")
            if bundle.get("resourceType") != "Bundle":
                raise AdapterError(f"{kind} search did not return a Bundle")
            reading.declare(self_base(bundle, kind))
            for is_match, resource in entries(bundle, kind):
                if is_match:
                    matches.append(self._keep(resource, known if known is not None else {}))
                elif known is not None and resource.get("id"):
                    self._keep(resource, known)
            where = self._next(target, bundle, kind, deadline)
        return matches

    def _next(self, target: Target, bundle: Mapping[str, Any], kind: str, deadline: float
              ) -> tuple[str, str] | None:
        """Where the next page is: on the registered base, or on its origin; a link
        elsewhere is checked once against the base the server's CapabilityStatement
        declares, and otherwise not followed (the answer is partial)."""
        reading = _READING.get()
        url = link(bundle, "next")
        if url is None:
            return None
        found = reading.locate(url)
        if found is None and not reading.metadata_read:
            reading.metadata_read = True
            reading.declare(self._implementation_url(target, deadline))
            found = reading.locate(url)
        if found is None:
            reading.foreign_next(kind, url)
        return found

    def _keep(self, resource: dict[str, Any], known: dict[str, dict[str, Any]]
              ) -> dict[str, Any]:
        """``resource`` with its references as keys; it and its contained
        resources go to ``known``; references to other servers are noted."""
        reading = _READING.get()
        key = f"{resource.get('resourceType')}/{resource.get('id')}"
        done = normalise(resource, key, reading.registered, reading.declared)
        reading.add_foreign(done.foreign)
        if resource.get("id"):
            known[key] = done.resource
        known.update(done.contained)
        return done.resource

    def _resolve(self, target: Target, wanted: Iterator[str], known: dict[str, dict[str, Any]],
                 deadline: float, *, follow: bool = True) -> None:
        """Fetch referenced resources the server did not include (and, with
        ``follow``, what a PractitionerRole names), within the read budget."""
        reading = _READING.get()
        # people first: past the budget, an organisation's name is what goes unread
        queue = sorted((r for r in wanted if r not in known),
                       key=lambda r: not r.startswith(("Practitioner", "CareTeam/")))
        while queue:
            wanted_ref = queue.pop(0)
            if wanted_ref in known or "#" in wanted_ref:
                continue
            if not reading.take_read():
                return
            resource = self._get_json(target, f"/{wanted_ref}", deadline, missing_ok=True)
            if resource is None or resource.get("resourceType") != wanted_ref.split("/")[0]:
                known[wanted_ref] = {}
                continue
            resource = {**resource, "id": wanted_ref.split("/", 1)[1]}
            resource = self._keep(resource, known)
            known[wanted_ref] = resource
            if follow and resource.get("resourceType") == "PractitionerRole":
                queue.extend(r for r in (ref(resource.get("practitioner")),
                                         ref(resource.get("organization"))) if r)

    def _implementation_url(self, target: Target, deadline: float) -> str | None:
        """``CapabilityStatement.implementation.url`` from ``/metadata``, kept an
        hour in the token cache (``-`` when it names none)."""
        key = "fhir-base:" + hashlib.sha256(target.url.encode()).hexdigest()[:32]
        held = self.tokens.get(key)
        if held:
            return None if held == "-" else held
        reply = self._get(target, "/metadata", deadline)
        data = _json_object(reply.body) if reply.status == 200 else {}
        found = (data.get("implementation") or {}).get("url") if isinstance(
            data.get("implementation"), dict) else None
        found = found if isinstance(found, str) and found.startswith(("http://", "https://")) \
            else None
        self.tokens.set(key, found or "-", DISCOVERY_TTL_S)
        return found

    def _get_json(self, target: Target, path: str, deadline: float, *,
                  missing_ok: bool = False, on_origin: bool = False) -> Any:
        reply = self._get(target, path, deadline, on_origin=on_origin)
        if reply.status == 404 and missing_ok:
            return None
        if reply.status != 200:
            sent = _READING.get().sent
            raise AdapterError(f"HTTP {reply.status}{outcome_detail(reply.body, sent)}")
        try:
            data = json.loads(reply.body)
        except (ValueError, UnicodeDecodeError) as e:
            raise AdapterError("the FHIR server did not answer JSON") from e
        if not isinstance(data, dict):
            raise AdapterError("the FHIR server did not answer a resource")
        return data

    def _get(self, target: Target, path: str, deadline: float, *,
             on_origin: bool = False) -> Reply:
        """GET ``path`` under the registered base (or, ``on_origin``, an absolute
        path on the registered origin: never another host)."""
        headers = {"Accept": FHIR_JSON}
        where = Target(id=target.id, url=_origin_of(target.url), timeout_ms=target.timeout_ms,
                       credentials=target.credentials) if on_origin else target
        token, cached = self._token(target, deadline)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        reading = _READING.get(None)
        if reading is not None:
            reading.calls += 1
        reply = self.request("GET", where, path, headers=headers, deadline=deadline)
        if reply.status == 401 and cached:
            self.tokens.delete(_token_key(target))
            token, _ = self._token(target, deadline)
            headers["Authorization"] = f"Bearer {token}"
            if reading is not None:
                reading.calls += 1
            reply = self.request("GET", where, path, headers=headers, deadline=deadline)
        if reply.status == 401:
            raise AdapterError("HTTP 401: the FHIR server refused the broker's credentials")
        return reply


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
