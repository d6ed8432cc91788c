"""``bad_text`` and ``plain`` take shortcuts (one regular expression; ASCII as it
is): checked here against what they stand for, ``unicodedata`` character by
character, for every code point Python knows (about a second)."""

from __future__ import annotations

import random
import string
import sys
import unicodedata

from federator.inputs import ALLOWED_CONTROLS, LINE_BREAKS, bad_text
from federator.lookup.free_text import plain


def refused(c: str, *, multiline: bool) -> bool:
    """The rule as the module states it, one character at a time."""
    category = unicodedata.category(c)
    return ((category == "Cc" and not (multiline and c in ALLOWED_CONTROLS))
            or category == "Cs" or (not multiline and c in LINE_BREAKS))


def test_bad_text_refuses_exactly_the_controls_and_surrogates_of_every_code_point() -> None:
    every = [chr(cp) for cp in range(sys.maxunicode + 1)]
    special = [c for c in every if unicodedata.category(c) in ("Cc", "Cs")]
    for multiline in (True, False):
        bad = {c for c in [*special, *LINE_BREAKS] if refused(c, multiline=multiline)}
        assert all(bad_text(c, multiline=multiline) for c in bad)
        # every other character, all in one text: not one of them is refused
        good = "".join(c for c in every if c not in bad)
        assert not bad_text(good, multiline=multiline)
        assert len(bad) + len(good) == sys.maxunicode + 1


def test_bad_text_finds_one_bad_character_anywhere_in_longer_text() -> None:
    rng = random.Random(18)
    for bad in ("\x00", "\x1b", "\x7f", "\x85", "\ud800", "\u2028"):
        for _ in range(20):
            text = "".join(rng.choices(string.ascii_letters + " é'-", k=rng.randint(0, 60)))
            at = rng.randint(0, len(text))
            spoilt = text[:at] + bad + text[at:]
            assert not bad_text(text, multiline=False)
            assert bad_text(spoilt, multiline=False)
            assert bad_text(spoilt) == refused(bad, multiline=True)
    assert not bad_text("two\tlines\r\nof text")
    assert bad_text("two\tlines", multiline=False)


def slow_plain(text: str) -> str:
    """``plain`` as it reads without its ASCII shortcut."""
    out = []
    for c in unicodedata.normalize("NFKC", text):
        if unicodedata.category(c) == "Cf":
            continue
        value = unicodedata.decimal(c, None)
        out.append(str(value) if value is not None else c)
    return "".join(out)


def test_plain_ascii_is_what_the_long_way_makes_of_it() -> None:
    assert all(plain(chr(cp)) == slow_plain(chr(cp)) for cp in range(128))
    rng = random.Random(18)
    for _ in range(200):
        text = "".join(rng.choices(string.printable, k=rng.randint(0, 80)))
        assert plain(text) == slow_plain(text)
    # and text that is not ASCII still takes the long way
    for text in ("９４３ ４７６ ５９１９", "Zoë\u200b Smith", "ＡＢ１２ ３ＣＤ", "٩٤٣"):
        assert plain(text) == slow_plain(text)
