"""Free text cannot carry a child.

A lookup's purpose, justification, references and the other free text people
type are kept verbatim: sent to every authority asked, shown to their admins,
kept in the audit trail, which otherwise holds only the child's pseudonym. So
free text holding the child's details is refused, saying why:

- any check-digit-valid NHS number, however written: spaces, hyphens, dots,
  slashes or invisible characters between the digits, full-width or other
  Unicode digits (``nhs_numbers``);
- the request's own child: their date of birth in the common ways of writing a
  date (2015-03-04, 04/03/2015, 4.3.15, 20150304, 4 March 2015, 4th of Mar 2015,
  March 4, 2015), their postcodes with or without the space, and their names as
  whole words, case and accents aside (``child_in_text``).

Names need care: a child may be called May, Will, Grace or Al, and "may" is
not a name. A given or family name of three letters or more that is not also an
everyday word is refused wherever it stands as a word. A short or everyday one
is refused where it is written as a name (a capital letter, "May" or "AL"),
and the full name (given and family name together, either order) always.
Single letters are not looked for.

Pure functions; no Flask.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import nhs_number

NHS_MESSAGE = ("Contains an NHS number. This text is sent to every authority asked and "
               "kept in the audit trail: give the NHS number only in the NHS number field.")
CHILD_MESSAGE = ("Contains the child's {what}. This text is sent to every authority asked "
                 "and kept in the audit trail: give the child's details only in their own "
                 "fields.")

#: Between two groups of an NHS number's digits: at most this many of
#: ``SEPARATORS`` (or invisible characters).
MAX_SEPARATOR = 3
SEPARATORS = frozenset(" \t\u00a0-./_,|:()[]\u2010\u2011\u2012\u2013\u2014\u2212\u00b7\u30fb")

#: Words that are also given or family names: refused only when written as a name.
_EVERYDAY_WORDS = (
        "may will rose grace hope faith joy mark bill jack sky summer autumn ivy amber "
        "dawn young brown green white black gray grey king hall wood hill page bond cook "
        "price read long little best rich case care sunny april june august holly daisy "
        "poppy honey storm river north west east south lane field house street bell day "
        "moon star love noble major child ward nurse judge law carter sage reed glass "
        "frank patience harmony chase dean drew guy pat sue don art rob ray bob sunday "
        "monday hunter baker cross rain mercy precious blessing destiny unity heaven "
        "angel hero royal rush more wise good english welsh french irish home power early "
    "spring winter walker driver banks woods waters"
)
EVERYDAY = frozenset(_EVERYDAY_WORDS.split())

MONTHS = {name: i for i, names in enumerate((
    ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"),
    ("may",), ("june", "jun"), ("july", "jul"), ("august", "aug"),
    ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
    ("december", "dec")), start=1) for name in names}
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_NUMERIC_DATE = re.compile(r"(?<!\d)(\d{1,4})\s?([-/. ])\s?(\d{1,2})\s?\2\s?(\d{1,4})(?!\d)")
_COMPACT_DATE = re.compile(r"(?<!\d)(\d{8})(?!\d)")
_DAY_MONTH = re.compile(rf"(?<![\w]){_DAY}\s*(?:of\s+)?({_MONTH})\.?,?\s*(\d{{2,4}})(?!\d)",
                        re.IGNORECASE)
_MONTH_DAY = re.compile(rf"(?<![\w])({_MONTH})\.?\s*{_DAY},?\s*(\d{{2,4}})(?!\d)",
                        re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*")


@dataclass(frozen=True)
class Identity:
    """What a request says of its child, as free text is checked against it."""

    given_names: tuple[str, ...] = ()
    family_names: tuple[str, ...] = ()
    date_of_birth: date | None = None
    postcodes: tuple[str, ...] = ()


def identity_of(child: Any) -> Identity:
    """The identity in a request's ``child`` (loaded, or raw JSON that may be wrong)."""
    if not isinstance(child, Mapping):
        return Identity()
    dob = child.get("date_of_birth")
    if isinstance(dob, str):
        try:
            dob = date.fromisoformat(dob.strip())
        except ValueError:
            dob = None
    postcodes = child.get("postcodes")
    return Identity(
        given_names=_name_parts(child.get("given_name")),
        family_names=_name_parts(child.get("family_name")),
        date_of_birth=dob if isinstance(dob, date) else None,
        postcodes=tuple(p for p in (_postcode(p) for p in postcodes or []
                                    if isinstance(p, str)) if p)
        if isinstance(postcodes, list) else ())


# -- text as it is read ------------------------------------------------------------------


def plain(text: str) -> str:
    """NFKC (full-width and other compatibility forms to their plain letters and
    digits), every Unicode decimal digit as its ASCII digit, invisible format
    characters (zero-width, direction marks) dropped. ASCII text is its own plain
    form (NFKC keeps it, none of it is a format character, its digits are ASCII):
    returned as it is, as most text is, without a look at each character."""
    if text.isascii():
        return text
    out = []
    for c in unicodedata.normalize("NFKC", text):
        if unicodedata.category(c) == "Cf":
            continue
        value = unicodedata.decimal(c, None)
        out.append(str(value) if value is not None else c)
    return "".join(out)


def fold(word: str) -> str:
    """A word as names are compared: no accents, no apostrophes, case folded."""
    stripped = "".join(c for c in unicodedata.normalize("NFKD", word)
                       if not unicodedata.combining(c))
    return re.sub(r"['\u2019`]", "", stripped).casefold()


def _name_parts(name: Any) -> tuple[str, ...]:
    if not isinstance(name, str):
        return ()
    return tuple(p for p in (fold(w) for w in _WORD.findall(plain(name))) if len(p) > 1)


def _postcode(value: str) -> str:
    return re.sub(r"\s+", "", plain(value)).upper()


# -- NHS numbers -------------------------------------------------------------------------


def digit_groups(text: str) -> Iterator[list[str]]:
    """Runs of digit groups joined by short separators: '943 476-5919' gives
    ['943', '476', '5919']."""
    groups: list[str] = []
    digits = ""
    gap = 0
    for c in plain(text):
        if c.isdigit():
            if not digits and groups and gap > MAX_SEPARATOR:
                yield groups
                groups = []
            digits += c
            gap = 0
            continue
        if digits:
            groups.append(digits)
            digits = ""
        if c in SEPARATORS or c.isspace():
            gap += 1
        else:
            gap = MAX_SEPARATOR + 1
    if digits:
        groups.append(digits)
    if groups:
        yield groups


def nhs_numbers(text: str) -> list[str]:
    """Every check-digit-valid NHS number in ``text``: ten digits made of whole
    groups next to each other (so a phone number's 11 digits are not read as one,
    nor a part of a longer number)."""
    found = []
    for groups in digit_groups(text):
        for start in range(len(groups)):
            joined = ""
            for group in groups[start:]:
                joined += group
                if len(joined) >= 10:
                    break
            if len(joined) == 10 and nhs_number.is_valid(joined):
                found.append(joined)
    return found


# -- the request's own child -------------------------------------------------------------


def _year(text: str, dob: date) -> bool:
    if len(text) == 4:
        return int(text) == dob.year
    return len(text) == 2 and int(text) == dob.year % 100


def _is_dob(day: str, month: int, year: str, dob: date) -> bool:
    return day.isdigit() and int(day) == dob.day and month == dob.month and _year(year, dob)


def holds_date(text: str, dob: date) -> bool:
    """Whether ``text`` writes ``dob`` in one of the common ways (day first, the
    British way, or month first, or year first)."""
    text = plain(text)
    for a, _, b, c in _NUMERIC_DATE.findall(text):
        if len(a) == 4 and _is_dob(c, int(b), a, dob):
            return True
        if len(a) <= 2 and (_is_dob(a, int(b), c, dob) or
                            (b.isdigit() and _is_dob(b, int(a), c, dob))):
            return True
    for digits in _COMPACT_DATE.findall(text):
        if digits in (dob.strftime("%Y%m%d"), dob.strftime("%d%m%Y")):
            return True
    for day, month, year in _DAY_MONTH.findall(text):
        if _is_dob(day, MONTHS[month.casefold()], year, dob):
            return True
    for month, day, year in _MONTH_DAY.findall(text):
        if _is_dob(day, MONTHS[month.casefold()], year, dob):
            return True
    return False


def holds_postcode(text: str, postcodes: Sequence[str]) -> bool:
    squeezed = plain(text).upper()
    for code in postcodes:
        outward, inward = code[:-3], code[-3:]
        if re.search(rf"(?<![A-Z0-9]){re.escape(outward)}[\s-]*{re.escape(inward)}(?![A-Z0-9])",
                     squeezed):
            return True
    return False


def holds_name(text: str, identity: Identity) -> bool:
    words = _WORD.findall(plain(text))
    folded = [fold(w) for w in words]
    names = set(identity.given_names) | set(identity.family_names)
    for i, (written, word) in enumerate(zip(words, folded, strict=True)):
        if word not in names:
            continue
        if len(word) >= 3 and word not in EVERYDAY:
            return True
        if written[:1].isupper():
            return True  # "May", "AL": written as a name
        near = folded[max(0, i - 1):i] + folded[i + 1:i + 2]
        other = (identity.family_names if word in identity.given_names
                 else identity.given_names)
        if set(near) & set(other):
            return True  # "al smith", "smith al": the full name
    return False


def child_in_text(text: str, identity: Identity | None = None) -> str | None:
    """Why ``text`` cannot be kept (the message for its field), or None."""
    if not text:
        return None
    if nhs_numbers(text):
        return NHS_MESSAGE
    if identity is None:
        return None
    if identity.date_of_birth and holds_date(text, identity.date_of_birth):
        return CHILD_MESSAGE.format(what="date of birth")
    if identity.postcodes and holds_postcode(text, identity.postcodes):
        return CHILD_MESSAGE.format(what="postcode")
    if holds_name(text, identity):
        return CHILD_MESSAGE.format(what="name")
    return None


#: The free text of a lookup request, by where it sits in the body.
LOOKUP_TEXTS: tuple[tuple[str, ...], ...] = (
    ("purpose",), ("scope_reason",), ("basis", "justification"), ("basis", "reference"))


def lookup_text_problems(request: Mapping[str, Any]) -> dict[str, Any]:
    """Marshmallow-shaped field errors for every free-text field of a lookup
    request that carries a child: ``{"basis": {"justification": [message]}}``."""
    identity = identity_of(request.get("child"))
    errors: dict[str, Any] = {}
    for path in LOOKUP_TEXTS:
        value: Any = request
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if not isinstance(value, str):
            continue
        problem = child_in_text(value, identity)
        if problem:
            place = errors
            for key in path[:-1]:
                place = place.setdefault(key, {})
            place[path[-1]] = [problem]
    return errors
