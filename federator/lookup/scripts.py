"""Writing systems in a name (pure): a name part that mixes scripts is refused.

A Cyrillic "о" in "Rоsie" looks like the Latin letter but is another name to
every system that compares characters: the authority's records would not
match, or would match another child. Unicode's restriction levels (UTS #39,
section 5.2, "highly restrictive") allow one script per word, or Latin with
the scripts Chinese, Japanese and Korean are written in together. Script
data: ``confusable-homoglyphs`` (Unicode's Scripts.txt as it packages it).
"""

from __future__ import annotations

import re
import unicodedata

from confusable_homoglyphs.categories import alias

#: Characters of no script of their own (spaces, hyphens, apostrophes; combining marks).
NEUTRAL = frozenset({"COMMON", "INHERITED"})
#: Scripts that may share a word (UTS #39 highly restrictive), Latin with any of them.
TOGETHER = (frozenset({"HAN", "HIRAGANA", "KATAKANA"}), frozenset({"HAN", "BOPOMOFO"}),
            frozenset({"HAN", "HANGUL"}))
WORD_BREAK = re.compile(r"[\s\-‐‑'’.]+")


def scripts(word: str) -> frozenset[str]:
    """The scripts of a word's letters, as Unicode names them (``LATIN``, ``CYRILLIC``)."""
    return frozenset(alias(c) for c in unicodedata.normalize("NFC", word)) - NEUTRAL


def allowed(found: frozenset[str]) -> bool:
    if len(found) <= 1:
        return True
    return any(found <= group | {"LATIN"} for group in TOGETHER)


def mixed_scripts(name: str) -> frozenset[str] | None:
    """The scripts mixed in the first word of ``name`` that mixes them, or None."""
    for word in WORD_BREAK.split(name):
        found = scripts(word)
        if not allowed(found):
            return found
    return None


def mixed_message(found: frozenset[str]) -> str:
    named = " and ".join(s.title() for s in sorted(found))
    return (f"Write each part of the name in one alphabet: this mixes {named} letters. "
            "A look-alike letter may have been typed or pasted in.")
