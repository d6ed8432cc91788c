"""One FHIR lookup's reading: its budget, the bases the server declares, and why
an answer is partial. Pure: no network.

A lookup reads at most ``max_pages`` pages per search (each asked with
``_count``) and at most ``max_reads`` resources by id. What it could not read
is never an error that loses what it did read: the answer carries what was
read, and each reason it is partial, by name (:data:`PARTIAL_REASONS`), with a
detail that names no person (counts, resource types, host names).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from adapters.fhir_refs import Foreign, declared_base, locate

#: Why an answer is partial (the names in an outcome's ``partial``; docs/protocol.md).
PAGE_CAP = "page_cap"
READ_CAP = "read_cap"
FOREIGN_NEXT_LINK = "foreign_next_link"
FOREIGN_REFERENCE = "foreign_reference"
PARTIAL_REASONS = (PAGE_CAP, READ_CAP, FOREIGN_NEXT_LINK, FOREIGN_REFERENCE)
#: What the practitioner is told (beside the authority's name) when an answer is partial.
PARTIAL_NOTICE = ("This service's answer may be incomplete: not all of its records for "
                  "this child could be read. Contact the service to confirm who is involved.")
#: A match found on Patient pages that were cut: another record may be this child.
CUT_CANDIDATES = ("More than one record may be this child, so none is shared. Please "
                  "contact the service to confirm the child's identity.")
MAX_NAMED = 5


@dataclass
class Reading:
    """The state of one lookup against one FHIR server (one thread's)."""

    registered: str
    max_pages: int
    max_reads: int
    #: what the broker sent about the child: cut out of any text the server returns
    sent: tuple[str, ...] = ()
    declared: list[str] = field(default_factory=list)
    metadata_read: bool = False
    reads: int = 0
    partial: dict[str, str] = field(default_factory=dict)
    foreign: list[Foreign] = field(default_factory=list)
    #: the resource types whose search results were cut
    cut: set[str] = field(default_factory=set)

    def declare(self, base: str | None) -> None:
        if base and base not in self.declared and len(self.declared) < 8:
            self.declared.append(base)

    def locate(self, url: str) -> tuple[str, str] | None:
        return locate(url, self.registered, self.declared)

    def take_read(self) -> bool:
        """One more read by id, or ``False`` (and ``read_cap`` named) past the budget."""
        if self.reads >= self.max_reads:
            self.partial[READ_CAP] = (f"more than {self.max_reads} referenced resources: "
                                      "the rest were not read")
            return False
        self.reads += 1
        return True

    def page_cap(self, kind: str) -> None:
        self.cut.add(kind)
        self.partial[PAGE_CAP] = (f"{kind} results ran past {self.max_pages} pages of "
                                  "results: the rest were not read")

    def foreign_next(self, kind: str, url: str) -> None:
        host = (urlsplit(url).hostname or "?")[:253]
        self.cut.add(kind)
        self.partial[FOREIGN_NEXT_LINK] = (
            f"the next page of {kind} results is on another server ({host}): not followed")

    def add_foreign(self, found: list[Foreign]) -> None:
        self.foreign.extend(found)

    def outcome_partial(self) -> dict[str, str]:
        """Every reason this answer is partial, by name, each with its detail."""
        named = dict(self.partial)
        if self.foreign:
            distinct = sorted({f.named() for f in self.foreign})
            shown = ", ".join(distinct[:MAX_NAMED]) + (
                f" and {len(distinct) - MAX_NAMED} more" if len(distinct) > MAX_NAMED else "")
            count = len(self.foreign)
            named[FOREIGN_REFERENCE] = (
                f"{count} reference{'s' if count != 1 else ''} to another server not "
                f"followed: {shown}")
        return named


def with_partial(answer: dict[str, Any], reading: Reading) -> dict[str, Any]:
    """A parsed answer with what its reading says: ``partial`` (reasons by name)
    and the practitioner's notice. A match among Patient results that
    were cut is no match: the pages not read may hold the child too."""
    partial = reading.outcome_partial()
    out = dict(answer)
    if "Patient" in reading.cut and out.get("status") == "match":
        out.update(status="no_match", confidence=min(out.get("confidence") or 0.5, 0.5),
                   professionals=[], notice=CUT_CANDIDATES)
        out.pop("record_ref", None)
        out.pop("left_out", None)
    elif partial and out.get("status") == "match" and not out.get("notice"):
        out["notice"] = PARTIAL_NOTICE
    if partial:
        out["partial"] = partial
    return out


def partial_detail(partial: Mapping[str, str] | None) -> str | None:
    """``{"page_cap": "…"}`` -> ``"partial answer: …"`` (reasons in a fixed order)."""
    if not partial:
        return None
    said = [partial[name] for name in PARTIAL_REASONS if name in partial]
    said += [text for name, text in sorted(partial.items()) if name not in PARTIAL_REASONS]
    return "partial answer: " + "; ".join(said)


def entries(bundle: Mapping[str, Any], kind: str
            ) -> Iterator[tuple[bool, dict[str, Any]]]:
    """``(is a match, resource)`` for each entry of a search Bundle: a match is of
    the searched type with ``search.mode`` ``match`` (or none); the rest are
    included resources."""
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        search = entry.get("search") if isinstance(entry.get("search"), dict) else {}
        mode = (search or {}).get("mode", "match")
        yield resource.get("resourceType") == kind and mode == "match", resource


def link(bundle: Mapping[str, Any], relation: str) -> str | None:
    for item in bundle.get("link") or []:
        if isinstance(item, dict) and item.get("relation") == relation \
                and isinstance(item.get("url"), str) and item["url"]:
            return str(item["url"])
    return None


def self_base(bundle: Mapping[str, Any], kind: str) -> str | None:
    """The base a search Bundle's ``self`` link declares, if any."""
    url = link(bundle, "self")
    return declared_base(url, kind) if url else None
