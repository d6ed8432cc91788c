"""A professional in a ``federator-lookup/1`` answer, and what each field must be
(an authority's answer is untrusted input: fields are what they claim).
Used by :mod:`adapters.protocol`'s answer parser; no Flask, no network."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

#: At most this many professionals of one answer are looked at (the broker's
#: ``FEDERATOR_MAX_PROFESSIONALS`` sets it for its clients): the rest are left out
#: unread, and the outcome says how many.
MAX_PROFESSIONALS = 200

#: A plain e-mail address: ASCII letters, digits and ``. _ + ' -`` before one ``@``,
#: then a host name of two labels or more. Nothing a ``mailto:`` link would read as
#: more than an address (``?``, ``&``, ``%``, ``#``, ``,``, spaces, a second ``@``).
EMAIL = re.compile(
    r"(?!\.)(?!.*\.\.)[A-Za-z0-9._+'-]{1,64}(?<!\.)@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{0,61}[A-Za-z0-9]")
#: Phone characters only: digits, spaces, ``+ ( ) -``, and an extension
#: (``ext``, ``ext.``, ``x``) followed by digits.
PHONE = re.compile(r"\+?[0-9 ()\-]*[0-9][0-9 ()\-]*(?:\s*(?:ext\.?|x)\s*[0-9]{1,6})?")
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: Bidirectional embeddings, overrides and isolates: they reorder what follows on
#: screen (a name that shows another's number).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
                          "\u200e\u200f\u061c")


def _plain_email(value: str) -> None:
    if len(value) > 254 or not EMAIL.fullmatch(value):
        raise ValidationError("not a plain e-mail address")


def _phone(value: str) -> None:
    if sum(c.isdigit() for c in value) < 3 or not PHONE.fullmatch(value):
        raise ValidationError("not a phone number")


def _iso_date(value: str) -> None:
    try:
        if ISO_DATE.fullmatch(value):
            date.fromisoformat(value)
            return
    except ValueError:
        pass
    raise ValidationError("not an ISO date (YYYY-MM-DD)")


def _one_line(value: str) -> None:
    """No control character, line break or bidirectional control."""
    if any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") or c in BIDI_CONTROLS
           for c in value):
        raise ValidationError("holds a control character")


class _Contact(fields.String):
    """An optional contact field: blank is absent (``None``); given, it is stripped
    and must pass ``check``."""

    def __init__(self, check: Callable[[str], None], max_length: int) -> None:
        super().__init__(load_default=None, allow_none=True,
                         validate=[validate.Length(max=max_length), check])

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        return text.strip() or None

    def _validate(self, value: Any) -> None:
        if value is not None:
            super()._validate(value)


def _text(max_length: int, *, min_length: int | None = None) -> list[Callable[[str], Any]]:
    return [validate.Length(min=min_length, max=max_length), _one_line]


class WireProfessional(Schema):
    class Meta:
        unknown = EXCLUDE

    name = fields.String(required=True, validate=_text(200, min_length=1))
    role = fields.String(load_default="", validate=_text(200))
    service = fields.String(load_default="", validate=_text(200))
    organisation = fields.String(load_default="", validate=_text(200))
    team = fields.String(load_default=None, allow_none=True, validate=_text(200))
    phone = _Contact(_phone, 50)
    email = _Contact(_plain_email, 254)
    registration_number = fields.String(
        load_default=None, allow_none=True, validate=_text(50)
    )
    #: JSON true or false only: marshmallow's default also reads "yes", "on", 1, ...
    #: as true, which docs/schemas/lookup-answer.schema.json does not allow (issue 22).
    current = fields.Boolean(load_default=True, truthy={True}, falsy={False})
    from_ = fields.String(data_key="from", load_default=None, allow_none=True,
                          validate=_iso_date)
    to = fields.String(load_default=None, allow_none=True, validate=_iso_date)
