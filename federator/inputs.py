"""Input that parses but cannot be kept: checked before any schema sees it.

Pure functions, no Flask. ``parse_json_body`` refuses numbers of absurd length
(Python's own limit would raise a bare ``ValueError``, a 500) as invalid JSON;
``text_problems`` names every string field holding a control character (a NUL
cannot be stored in PostgreSQL text, so the audit write would fail) or a lone
surrogate (cannot be encoded as UTF-8 for the kits or the trail). Names in any
script, with apostrophes, hyphens and accents, are untouched.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from typing import Any

MAX_NUMBER_DIGITS = 40
ALLOWED_CONTROLS = frozenset("\t\n\r")  # free text (a justification) may have lines
MESSAGE = "Contains a character that cannot be used here (a control character or an " \
          "unpaired surrogate)."


def _number(text: str) -> int:
    if len(text) > MAX_NUMBER_DIGITS:
        raise ValueError("number too long")
    return int(text)


def parse_json_body(raw: bytes | str) -> Any:
    """Like ``json.loads``; every refusal is a ``json.JSONDecodeError``."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    try:
        return json.loads(text, parse_int=_number)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as e:
        raise json.JSONDecodeError(f"unreadable JSON: {type(e).__name__}", text, 0) from e


def bad_text(value: str) -> bool:
    return any((unicodedata.category(c) == "Cc" and c not in ALLOWED_CONTROLS)
               or unicodedata.category(c) == "Cs" for c in value)


def text_problems(data: Any) -> dict[str, Any]:
    """Marshmallow-shaped errors for every string (key or value) that ``bad_text``
    refuses: ``{"child": {"given_name": [MESSAGE]}}``; empty when all is well."""
    errors: dict[str, Any] = {}
    if isinstance(data, Mapping):
        for key, value in data.items():
            name = str(key)
            if isinstance(key, str) and bad_text(key):
                errors["_schema"] = [MESSAGE]
                continue
            inner = _value_problems(value)
            if inner:
                errors[name] = inner
    return errors


def _value_problems(value: Any) -> Any:
    if isinstance(value, str):
        return [MESSAGE] if bad_text(value) else None
    if isinstance(value, Mapping):
        return text_problems(value) or None
    if isinstance(value, list):
        inner = {i: p for i, item in enumerate(value) if (p := _value_problems(item))}
        return inner or None
    return None
