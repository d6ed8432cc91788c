"""What the auditor's casework pages share: a lookup row in plain words (pure,
given the registry's names), and a query string read through its schema with
every problem named on its field."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from marshmallow import Schema, ValidationError

from federator.audit.casework import LookupRow
from federator.audit.reviews import Review
from federator.web.forms import _flatten
from federator.web.recent import outcome_words


def registry_names(endpoints: Iterable[Any]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(authority id → name, area code → the names of the authorities covering it)."""
    names: dict[str, str] = {}
    areas: dict[str, list[str]] = {}
    for endpoint in endpoints:
        names[endpoint.id] = endpoint.name
        for code in endpoint.coverage:
            areas.setdefault(str(code), []).append(endpoint.name)
    return names, areas


def _basis(row: LookupRow) -> str:
    words = row.basis_type.capitalize()
    return f"{words}, reference {row.reference}" if row.reference and words else words


def outcome_text(row: LookupRow, names: Mapping[str, str]) -> list[str]:
    """What came of it, one line each."""
    if row.kind == "refused":
        fields = ", ".join(f.replace(".", " ") for f in row.refused_fields)
        return ["Refused before any authority was asked"
                + (f": {row.reason}" if row.reason else "")
                + (f" (fields: {fields})" if fields else "")]
    if row.kind == "rate_limited":
        return [f"Refused: too many lookups (limit {row.limit})" if row.limit
                else "Refused: too many lookups"]
    if row.interrupted:
        return [f"Cut off before it finished ({len(row.asked)} asked)"]
    if row.complete is None:
        return [f"No ending recorded ({len(row.asked)} asked)"]
    lines = outcome_words(row.outcome_counts()) or ["No authority was asked"]
    if row.matched:
        lines.append("Knew the child: " + ", ".join(names.get(a, a) for a in row.matched))
    return lines


def row_view(row: LookupRow, names: Mapping[str, str], areas: Mapping[str, Sequence[str]],
             review: Review | None = None) -> dict[str, Any]:
    """One lookup as the tables show it."""
    return {
        "seq": row.seq, "kind": row.kind, "kind_words": row.kind_words, "at": row.at,
        "actor_id": row.actor_id, "actor_role": row.actor_role,
        "organisation": row.organisation or "Not recorded", "purpose": row.purpose,
        "basis": _basis(row), "follows": row.follows, "lookup_id": row.lookup_id,
        "areas": [f"{', '.join(areas[a])} ({a})" if areas.get(a) else a for a in row.areas],
        "asked": [names.get(a, a) for a in row.asked],
        "outcome": outcome_text(row, names), "flags": row.flags, "records": row.records,
        "state_words": review.state_words if review else "",
        "state": review.state if review else "",
        "review_outcome": review.outcome if review else "",
        "last_step": review.steps[-1] if review and review.steps else None,
    }


def read_query(schema: Schema, args: Mapping[str, str], order: Sequence[str]
               ) -> tuple[dict[str, Any] | None, dict[str, str], list[dict[str, str]],
                          dict[str, list[str]]]:
    """(loaded or None, values as typed, error summary, errors by field): blanks
    are left out, a field's errors link to ``#filter-<name>``."""
    values = {k: (args.get(k) or "").strip() for k in order}
    given = {k: v for k, v in values.items() if v}
    try:
        return schema.load(given), values, [], {}
    except ValidationError as e:
        messages = e.messages if isinstance(e.messages, dict) else {"from": e.messages}
        errors = {k: _flatten(v) for k, v in messages.items()}
        summary = [{"text": errors[k][0], "href": f"#filter-{k}"} for k in order if k in errors]
        summary += [{"text": m, "href": f"#filter-{order[0]}"} for k, ms in errors.items()
                    if k not in order for m in ms]
        return None, values, summary, errors
