"""How :class:`adapters.fhir_r4.FhirR4Client` reads a FHIR server as servers
actually speak it (issue 20): searches with ``_count`` over pages, ``next``
links, references of every form, CareTeams reached through
``EpisodeOfCare.team``, all within one lookup's budget.

- Every search sends ``_count`` (the client's ``page_size``) and reads at most
  ``max_pages`` pages; references are read by id at most ``max_reads`` times a
  lookup, people before organisations.
- ``next`` links and absolute references are followed on the registered base,
  on its origin, or on a base the server declares (a search Bundle's ``self``
  link; ``CapabilityStatement.implementation.url``, read once an hour), and are
  always asked on the registered base (:func:`adapters.fhir_refs.locate`):
  the broker never connects anywhere a server names.
- Every resource read has its references rewritten to keys
  (:func:`adapters.fhir_refs.normalise`): contained resources are kept under
  ``Container/id#cid``, versioned references read as the resource, and
  references to another server never fetched, only named.
- What the budget or another server stopped the client reading is recorded in
  the lookup's :class:`adapters.fhir_paging.Reading`: the answer is *partial*,
  named, never an error that loses what was read.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

from adapters.base import AdapterError, Reply, Target
from adapters.fhir_paging import Reading, entries, link, self_base
from adapters.fhir_r4_mapping import ref
from adapters.fhir_refs import normalise
from adapters.fhir_tokens import TokenCache

#: How long the base a server's CapabilityStatement declares is kept.
DECLARED_TTL_S = 3600
#: The lookup in progress on this thread (one client serves many threads at once).
READING: contextvars.ContextVar[Reading] = contextvars.ContextVar("fhir_reading")


class FhirReading:
    """Mixed into :class:`~adapters.fhir_r4.FhirR4Client`, which provides these."""

    tokens: TokenCache
    max_pages: int
    max_reads: int
    page_size: int
    _get: Callable[..., Reply]
    _get_json: Callable[..., Any]

    def _search(self, target: Target, kind: str, params: Mapping[str, str] | list[
                tuple[str, str]], deadline: float, known: dict[str, dict[str, Any]] | None = None,
                ) -> list[dict[str, Any]]:
        """Every matched resource over every page (at most ``max_pages``, each of
        ``_count`` entries); included ones go to ``known``. References come back
        rewritten to keys (:func:`adapters.fhir_refs.normalise`)."""
        reading = self._reading(target)
        if "Patient" in reading.cut and kind != "Patient":
            return []  # a match on cut Patient pages is none (fhir_paging.with_partial)
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
                    matches.append(self._keep(reading, resource,
                                              known if known is not None else {}))
                elif known is not None and resource.get("id"):
                    self._keep(reading, resource, known)
            where = self._next(target, bundle, kind, deadline)
        return matches

    def _next(self, target: Target, bundle: Mapping[str, Any], kind: str, deadline: float
              ) -> tuple[str, str] | None:
        """Where the next page is: on the registered base, or on its origin; a link
        elsewhere is checked once against the base the server's CapabilityStatement
        declares, and otherwise not followed (the answer is partial)."""
        reading = self._reading(target)
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

    def _reading(self, target: Target) -> Reading:
        """This lookup's reading (a fresh one outside a lookup)."""
        return READING.get(None) or Reading(target.url, self.max_pages, self.max_reads)

    @staticmethod
    def _keep(reading: Reading, resource: dict[str, Any], known: dict[str, dict[str, Any]]
              ) -> dict[str, Any]:
        """``resource`` with its references as keys; it and its contained
        resources go to ``known``; references to other servers are noted."""
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
        reading = self._reading(target)
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
            resource = self._keep(reading, {**resource, "id": wanted_ref.split("/", 1)[1]},
                                  known)
            if follow and resource.get("resourceType") == "PractitionerRole":
                queue.extend(r for r in (ref(resource.get("practitioner")),
                                         ref(resource.get("organization"))) if r)

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
                if wanted in have or not wanted.startswith(("CareTeam/", "EpisodeOfCare/")):
                    continue
                have.add(wanted)
                if wanted not in known:
                    self._resolve(target, iter([wanted]), known, deadline, follow=False)
                team = known.get(wanted) or {}
                if team.get("resourceType") == "CareTeam" and ref(team.get("subject")) in (
                        None, subject):
                    found.append(team)
        return found

    def _implementation_url(self, target: Target, deadline: float) -> str | None:
        """``CapabilityStatement.implementation.url`` from ``/metadata``, kept an
        hour in the token cache (``-`` when it names none)."""
        key = "fhir-base:" + hashlib.sha256(target.url.encode()).hexdigest()[:32]
        held = self.tokens.get(key)
        if held:
            return None if held == "-" else held
        reply = self._get(target, "/metadata", deadline)
        try:
            data = json.loads(reply.body) if reply.status == 200 else {}
        except (ValueError, UnicodeDecodeError):
            data = {}
        implementation = data.get("implementation") if isinstance(data, dict) else None
        found = implementation.get("url") if isinstance(implementation, dict) else None
        if not (isinstance(found, str) and found.startswith(("http://", "https://"))):
            found = None
        self.tokens.set(key, found or "-", DECLARED_TTL_S)
        return found
