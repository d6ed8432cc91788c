"""Normalising what people type, the same way for a request and for a record
(pure functions, no kit imports: :mod:`adapters.kit.comparisons`,
:mod:`adapters.kit.candidates` and :mod:`adapters.kit.matching` all use them).

Names: NFKC, case folded, accents dropped, and letters from another script
that look like a Latin letter (UTS #39 confusables: a Cyrillic "о" in
"Rоsie") read as that Latin letter, so "Rоsie" is "rosie". Why not the full
UTS #39 skeleton: it also folds Latin letters onto each other ("m" to "rn",
"l" to "I"), which would spoil the similarity and phonetic comparisons that
follow; applied only to letters outside Latin it keeps what the skeleton is
for here (a lookalike letter is not a new name). The mapping comes from
Unicode's confusables.txt as packaged by ``confusable-homoglyphs`` (pure
Python and data, no ICU to build: PyICU's SpoofChecker would need libicu-dev).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from datetime import date

_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][0-9A-Z]?)([0-9])([A-Z]{2})$")
_DOB = re.compile(r"^\s*([0-9]{4})-?([0-9]{2})-?([0-9]{2})\s*$")
_NAME_SPLIT = re.compile(r"[\s\-‐‑‒–—_/.,]+")


# --------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------


@functools.cache
def _latin_lookalikes() -> dict[str, str]:
    """Letters outside Latin that Unicode lists as confusable with one Latin letter."""
    from confusable_homoglyphs.categories import alias
    from confusable_homoglyphs.confusables import confusables_data

    table: dict[str, str] = {}
    for char, homoglyphs in confusables_data.items():
        if len(char) != 1 or char.isascii() or alias(char) == "LATIN":
            continue
        latin = sorted({h["c"].casefold() for h in homoglyphs
                        if len(h["c"]) == 1 and h["c"].isascii() and h["c"].isalpha()})
        if latin:
            table[char] = latin[0]
    return table


#: Latin letters that do not decompose but that people type without the mark.
_LATIN_PLAIN = {"ł": "l", "ø": "o", "đ": "d", "ð": "d", "þ": "th", "æ": "ae", "œ": "oe",
                "ı": "i", "ħ": "h", "ŧ": "t", "ŀ": "l"}


def _fold_char(c: str, lookalikes: dict[str, str]) -> str:
    """One (case folded) character: plain Latin for a lookalike, whichever case the
    lookalike was typed in (so "Анна" and "анна" fold alike)."""
    if c.isascii():
        return c
    if c in _LATIN_PLAIN:
        return _LATIN_PLAIN[c]
    found = lookalikes.get(c)
    if found is None:
        upper = c.upper()
        found = lookalikes.get(upper) if len(upper) == 1 else None
    return found if found is not None else c


@functools.lru_cache(maxsize=1 << 17)
def name_parts(value: str | None) -> tuple[str, ...]:
    """The parts of a name, each normalised: "Zoë O'Neil-Smith" → ("zoe", "oneil", "smith").

    Parts split at spaces, hyphens, dashes, slashes and full stops; within a
    part only letters and digits count (an apostrophe joins: "O'Neil" is one part)."""
    if not value or not isinstance(value, str):
        return ()
    lookalikes = _latin_lookalikes()
    text = unicodedata.normalize("NFKC", value).casefold()
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    plain = "".join(_fold_char(c, lookalikes) for c in plain).casefold()
    parts = (("".join(c for c in p if c.isalnum())) for p in _NAME_SPLIT.split(plain))
    return tuple(p for p in parts if p)


def normalise_name(value: str | None) -> str:
    """Case, accents, spaces, punctuation and lookalike letters do not count:
    "Zoë O'Neil" == "zoe oneil", "Rоsie" (Cyrillic о) == "rosie"."""
    return "".join(name_parts(value))


# --------------------------------------------------------------------------
# NHS number
# --------------------------------------------------------------------------


def normalise_nhs_number(value: str | None) -> str | None:
    if not value or not isinstance(value, str):
        return None
    digits = re.sub(r"[\s\-]", "", value)
    return digits or None


def valid_nhs_number(value: str | None) -> bool:
    """Ten digits whose last is the modulus 11 check digit of the first nine."""
    n = normalise_nhs_number(value)
    if n is None or len(n) != 10 or not n.isascii() or not n.isdigit():
        return False
    total = sum(int(d) * (10 - i) for i, d in enumerate(n[:9]))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(n[9])


# --------------------------------------------------------------------------
# Postcode
# --------------------------------------------------------------------------


def normalise_postcode(value: str | None) -> str:
    if not value or not isinstance(value, str):
        return ""
    return re.sub(r"[^A-Z0-9]", "", value.upper()) if value.isascii() else re.sub(
        r"[^A-Z0-9]", "", unicodedata.normalize("NFKC", value).upper().encode(
            "ascii", "ignore").decode())


def postcode_district(postcode: str) -> str | None:
    """The outward code of a UK postcode ("LS62AB" → "LS6"); None if not UK-shaped."""
    m = _POSTCODE.match(postcode)
    return m.group(1) if m else None


def postcode_sector(postcode: str) -> str | None:
    """The sector of a UK postcode ("LS62AB" → "LS62"); None if not UK-shaped."""
    m = _POSTCODE.match(postcode)
    return m.group(1) + m.group(2) if m else None


def outward_code(postcode: str) -> str:
    """The district part of a normalised postcode ("LS62AB" → "LS6")."""
    return postcode[:-3] if len(postcode) > 3 else postcode


# --------------------------------------------------------------------------
# Date of birth
# --------------------------------------------------------------------------


def dob_digits(value: str | date | None) -> str | None:
    """"YYYYMMDD" for a date, or for a string shaped like one (even an impossible
    date such as a typed "2015-13-02": its digits still compare)."""
    if value is None:
        return None
    if isinstance(value, date):
        return f"{value.year:04d}{value.month:02d}{value.day:02d}"
    if not isinstance(value, str):
        return None
    m = _DOB.match(value)
    if not m or not value.strip().isascii():
        return None
    return m.group(1) + m.group(2) + m.group(3)


def parse_date(value: str | date | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        return None
