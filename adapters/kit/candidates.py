"""The candidate index (blocking): which records are worth scoring for a
request, found by a few dictionary look-ups so a lookup costs about the same
at 1,000 records as at 1,000,000 (benchmarks/matching.py measures it).

Built once when the source (re)loads (``sources.Records.match_index``), it
also holds what the score needs from all the records: each record prepared
for comparing, and how many records carry each given and family name (term
frequency, ``model.py``), and each full postcode.

Blocking keys. A record is a candidate when it shares any one of these with
the request (the request's postcodes each count, its date of birth also with
day and month swapped, its names also swapped over):

==========  ==============================================  ======================
key         what                                            survives
==========  ==============================================  ======================
``dg``      date of birth + first letter of given name      family name changed
``df``      date of birth + first letter of family name     given name changed or missing
``dp``      date of birth + postcode district               both names changed
``ny``      phonetic given + family name + year of birth    postcode changed, day/month wrong
``nm``      phonetic given + family name + day and month    postcode changed, year wrong
``p``       full postcode                                   date of birth wrong
``fp``      phonetic family + given initial + district      date of birth wrong, given name typo
``gp``      phonetic given + family initial + district      date of birth wrong, family name typo
``nn``      phonetic given + family name                    date of birth missing, postcode wrong
==========  ==============================================  ======================

``nn`` is looked up only while it holds at most :data:`MAX_NAME_BLOCK`
records: a common pair of names (a few hundred Oliver Smiths in a million)
would cost more to score than it could add (the other keys hold those).

So the true record is lost only when at least two kinds of error hit at
once in a way no key survives (say, a date of birth digit wrong, the postcode
changed and a typo that changes a name's phonetic key). The benchmark
measures this loss (pairs completeness). Keys are stored as hashes; two keys
that collide only add a candidate, which the score then judges.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from adapters.kit.comparisons import Name, Postcode, prepare_name, prepare_postcode
from adapters.kit.names import in_table
from adapters.kit.normalise import dob_digits, normalise_nhs_number


class RecordFields(Protocol):
    """What the index reads of a record (``sources.ChildRecord``; not imported:
    sources.py imports this module)."""

    @property
    def nhs_number(self) -> str | None: ...
    @property
    def given_name(self) -> str: ...
    @property
    def family_name(self) -> str: ...
    @property
    def date_of_birth(self) -> date | None: ...
    @property
    def postcode(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Prepared:
    """One side of a comparison: a record, or a request."""

    given: Name | None
    family: Name | None
    dob: str | None  # "YYYYMMDD"
    postcodes: tuple[Postcode, ...]
    nhs: str | None


def prepare_record(r: RecordFields) -> Prepared:
    pc = prepare_postcode(r.postcode)
    return Prepared(prepare_name(r.given_name), prepare_name(r.family_name),
                    dob_digits(r.date_of_birth), (pc,) if pc else (),
                    normalise_nhs_number(r.nhs_number))


def prepare_request(child: Mapping[str, Any]) -> Prepared:
    postcodes = []
    for value in _strings(child.get("postcodes")):
        pc = prepare_postcode(value)
        if pc is not None and pc not in postcodes:
            postcodes.append(pc)
    given, family = child.get("given_name"), child.get("family_name")
    dob = child.get("date_of_birth")
    return Prepared(prepare_name(given if isinstance(given, str) else None),
                    prepare_name(family if isinstance(family, str) else None),
                    dob_digits(dob if isinstance(dob, str) else None), tuple(postcodes),
                    normalise_nhs_number(_text(child.get("nhs_number"))))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _strings(values: Any) -> Iterable[str]:
    if not isinstance(values, list | tuple):
        return ()
    return (v for v in values if isinstance(v, str))


@dataclass
class RecordIndex:
    size: int
    prepared: list[Prepared] = field(default_factory=list)
    by_nhs: dict[str, int] = field(default_factory=dict)
    #: key -> a position, or the positions (most keys hold one record: kept as an int)
    blocks: dict[int, int | list[int]] = field(default_factory=dict)
    given_counts: Counter[str] = field(default_factory=Counter)
    family_counts: Counter[str] = field(default_factory=Counter)
    postcode_counts: Counter[str] = field(default_factory=Counter)

    def is_known_given(self, normalised: str) -> bool:
        """A given name in the shipped table or carried by a record here."""
        return normalised in self.given_counts or in_table(normalised)


MAX_NAME_BLOCK = 64


def _phonetic(name: Name | None) -> str | None:
    if name is None:
        return None
    return name.metaphone[:4] or name.full[:4]


def _district(pc: Postcode) -> str:
    return pc.district or pc.full


def block_keys(p: Prepared, *, query: bool = False) -> set[int]:
    """The blocking keys of a record, or (``query``) of a request: with its
    date of birth also transposed and its names also swapped."""
    dobs = {p.dob} if p.dob else set()
    if query and p.dob:
        transposed = p.dob[:4] + p.dob[6:8] + p.dob[4:6]
        dobs.add(transposed)
    name_pairs = [(p.given, p.family)]
    if query:
        name_pairs.append((p.family, p.given))
    districts = {_district(pc) for pc in p.postcodes}
    keys: set[tuple[Any, ...]] = set()
    for given, family in name_pairs:
        g0 = given.full[0] if given else None
        f0 = family.full[0] if family else None
        gk, fk = _phonetic(given), _phonetic(family)
        if gk and fk:
            keys.add(("nn", gk, fk))
        for dob in dobs:
            if g0:
                keys.add(("dg", dob, g0))
            if f0:
                keys.add(("df", dob, f0))
            if gk and fk:
                keys.add(("ny", gk, fk, dob[:4]))
                keys.add(("nm", gk, fk, dob[4:]))
        for d in districts:
            if fk and g0:
                keys.add(("fp", fk, g0, d))
            if gk and f0:
                keys.add(("gp", gk, f0, d))
    for dob in dobs:
        for d in districts:
            keys.add(("dp", dob, d))
    for pc in p.postcodes:
        keys.add(("p", pc.full))
    return {hash(k) for k in keys}


def name_keys(p: Prepared) -> set[int]:
    """The request's ``nn`` keys (names straight and swapped)."""
    gk, fk = _phonetic(p.given), _phonetic(p.family)
    return {hash(("nn", gk, fk)), hash(("nn", fk, gk))} if gk and fk else set()


def build_index(records: Sequence[RecordFields]) -> RecordIndex:
    index = RecordIndex(size=len(records))
    blocks = index.blocks
    for i, r in enumerate(records):
        p = prepare_record(r)
        index.prepared.append(p)
        if p.nhs:
            index.by_nhs.setdefault(p.nhs, i)  # the first, as a scan would find it
        if p.given:
            index.given_counts[p.given.full] += 1
        if p.family:
            index.family_counts[p.family.full] += 1
        if p.postcodes:
            index.postcode_counts[p.postcodes[0].full] += 1
        for key in block_keys(p):
            found = blocks.get(key)
            if found is None:
                blocks[key] = i
            elif isinstance(found, int):
                blocks[key] = [found, i]
            else:
                found.append(i)
    return index


def candidates(index: RecordIndex, query: Prepared) -> list[int]:
    """Positions of the records that share a blocking key with the request, in
    record order."""
    found: set[int] = set()
    blocks = index.blocks
    crowded = name_keys(query)
    for key in block_keys(query, query=True):
        hit = blocks.get(key)
        if hit is None:
            continue
        if isinstance(hit, int):
            found.add(hit)
        elif not (key in crowded and len(hit) > MAX_NAME_BLOCK):
            found.update(hit)
    return sorted(found)
