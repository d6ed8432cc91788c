"""How a setting is declared and read: ``setting()`` marks a dataclass field with
its description and how it is parsed; ``declarations_of`` resolves the marks into
``Declaration``s, which read the environment and which the settings page is written
from. Pure: no environment is read here (``federator.config.Settings.from_env`` does).
"""

from __future__ import annotations

import math
import types
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_args, get_type_hints

PREFIX = "FEDERATOR_"


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names the variable."""


@dataclass(frozen=True)
class Declared:
    """How a setting is read and described, recorded by ``setting()``."""

    description: str  # one line, for operators
    minimum: int | None = None  # a whole number's smallest value (1 when not given)
    parse: Callable[[str], Any] | None = None  # trimmed text to value, when the type's is not
    fallback: str | None = None  # the field whose variable is read when this one is unset
    standard: str | None = None  # another standard's variable, read when this one is unset
    choices: tuple[str, ...] = ()  # the only values accepted
    unset: str = ""  # for the docs: what leaving it unset means, when the default does not say


def setting(default: Any, description: str, **how: Any) -> Any:
    """A declared setting: a dataclass field with its default, its description
    and ``how`` it is read (the other fields of ``Declared``)."""
    return field(default=default, metadata={"setting": Declared(description, **how)})


def no_trailing_slash(raw: str) -> str:
    return raw.rstrip("/")


def comma_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


#: The parser for each field type (``X | None`` uses X's).
PARSERS: dict[Any, Callable[[str], Any]] = {int: int, str: str, Path: Path,
                                            tuple[str, ...]: comma_list}


#: A secret's least estimated entropy, in bits (a random 32-character hex string has
#: about 115 by this estimate, never below 90 in 200,000 draws; ``"a" * 32`` none).
MIN_SECRET_BITS = 80


def low_entropy(value: str) -> bool:
    """Whether a secret is too predictable: its characters' Shannon entropy times its
    length (an estimate that cannot see patterns beyond repeated characters) is below
    ``MIN_SECRET_BITS``, or it has fewer than 8 different characters."""
    if not value:
        return True
    counts = Counter(value)
    per_char = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return len(counts) < 8 or per_char * len(value) < MIN_SECRET_BITS


def variable(name: str) -> str:
    """The environment variable of the ``Settings`` field ``name``."""
    return PREFIX + name.upper()


def _text(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    return value.strip() if value and value.strip() else None


@dataclass(frozen=True)
class Declaration:
    """One setting as declared on ``Settings``, resolved: what ``from_env`` reads
    and the docs show."""

    name: str  # the Settings field
    variable: str
    default: Any
    kind: Any  # the field's type without ``| None``: int, str, Path, tuple[str, ...]
    description: str
    minimum: int | None
    parse: Callable[[str], Any]
    fallback: str | None  # the variable read when this one is unset
    choices: tuple[str, ...]
    unset: str

    def read(self, environ: Mapping[str, str]) -> Any:
        """The value from ``environ``; blank is unset; ConfigError names the variable."""
        raw = _text(environ, self.variable)
        if raw is None and self.fallback:
            raw = _text(environ, self.fallback)
        if raw is None:
            return self.default
        if self.choices and raw not in self.choices:
            raise ConfigError(f"{self.variable} must be one of {', '.join(self.choices)}")
        try:
            value = self.parse(raw)
        except ValueError as e:
            raise ConfigError(f"{self.variable} must be a whole number") from e
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(f"{self.variable} must be at least {self.minimum}")
        return value


def _without_none(hint: Any) -> Any:
    """``X`` for ``X | None``, else the hint itself."""
    if isinstance(hint, types.UnionType) and type(None) in get_args(hint):
        (kind,) = (a for a in get_args(hint) if a is not type(None))
        return kind
    return hint


def declarations_of(cls: type) -> tuple[Declaration, ...]:
    """Every setting declared on the dataclass ``cls``, in the order of its fields."""
    hints = get_type_hints(cls)
    found = []
    for f in fields(cls):
        declared = f.metadata.get("setting")
        if declared is None:
            continue
        kind = _without_none(hints[f.name])
        if kind not in PARSERS:
            raise TypeError(f"{cls.__name__}.{f.name}: no parser for {kind!r}; give parse=")
        minimum = declared.minimum
        if minimum is None and kind is int:
            minimum = 1
        found.append(Declaration(
            name=f.name, variable=variable(f.name), default=f.default, kind=kind,
            description=declared.description, minimum=minimum,
            parse=declared.parse or PARSERS[kind],
            fallback=variable(declared.fallback) if declared.fallback else declared.standard,
            choices=declared.choices, unset=declared.unset))
    return tuple(found)
