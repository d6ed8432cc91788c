"""A synthetic, deterministic world for the demo: authorities, children and
the professionals who work (or worked) with them.

Pure: no network, no Flask, no files. Everything comes from one seed
(``random.Random(seed)`` and a seeded ``Faker("en_GB")``), never from the
global random generator or the clock, so the same seed always gives the same
world.

All people are fictional. NHS numbers are in the 999 test range, phone
numbers in Ofcom's ranges reserved for drama, e-mail addresses under
``example.gov.uk`` / ``example.nhs.uk``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

import nhs_number
from faker import Faker

from federator.demo.model import (
    BEHAVIOURS,
    REFERENCE_DATE,
    SLOW_DELAY_MS,
    Authority,
    Child,
    Involvement,
    World,
)
from federator.demo.places import (
    _DOWN_INDEX,
    _SLOW_INDEX,
    COUNCILS,
    NATIONAL_CODE,
    NATIONAL_ID,
    NATIONAL_NAME,
    NATIONAL_ORGANISATION,
    NATIONAL_PHONE_RANGE,
    Council,
    district_of,
    postcode_table,
)


@dataclass
class _Professional:
    name: str
    role: str
    service: str
    organisation: str
    team: str
    phone: str
    email: str
    registration_number: str
    sensitive: bool = False


# (role, service, registration scheme, team pattern)
_COUNCIL_ROLES = (
    ("Social worker", "children's social care", "SWE", "{place} {loc} Assessment Team"),
    ("Senior social worker", "children's social care", "SWE", "{place} {loc} Child in Need Team"),
    ("Family support worker", "early help", "", "{place} {loc} Early Help Hub"),
    ("Early help practitioner", "early help", "", "{place} {loc} Early Help Hub"),
    ("Youth justice officer", "youth justice", "", "{place} Youth Justice Service"),
    ("Educational psychologist", "special educational needs", "HCPC-PYL",
     "{place} Educational Psychology Service"),
)
_HEALTH_ROLES = {
    "health visitor": ("Health visitor", "health visiting", "NMC",
                       "{loc} 0-19 Health Visiting Team"),
    "school nurse": ("School nurse", "school nursing", "NMC", "{loc} School Nursing Team"),
    "paediatrician": ("Community paediatrician", "community paediatrics", "GMC",
                      "{loc} Community Paediatrics"),
    "salt": ("Speech and language therapist", "speech and language therapy", "HCPC-SL",
             "{loc} Children's Speech and Language Therapy"),
}
_SENSITIVE = ("Sexual health nurse", "sexual health", "NMC",
              "Yorkshire Young People's Sexual Health")
_LOCALITIES = ("North", "South", "East", "West", "Central")


class _Gen:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - synthetic data, must be reproducible
        self.fake = Faker("en_GB")
        self.fake.seed_instance(seed)
        self.used_phones: set[str] = set()
        self.used_regs: set[str] = set()
        self.used_emails: set[str] = set()
        self.used_nhs: set[str] = set()

    # -- primitives -------------------------------------------------------

    def phone(self, prefix: str) -> str:
        # "0113 496 0" + 3 digits = 0113 496 0xxx; "01632 960" + 3 = 01632 960xxx
        width = 3
        while True:
            number = f"{prefix}{self.rng.randrange(10 ** width):0{width}d}"
            if number not in self.used_phones:
                self.used_phones.add(number)
                return number

    def registration(self, scheme: str) -> str:
        rng = self.rng
        while True:
            if scheme == "SWE":
                reg = f"SW{rng.randrange(10 ** 5, 10 ** 6)}"
            elif scheme == "NMC":
                reg = (f"{rng.randrange(80, 100) % 100:02d}"
                       f"{rng.choice('ABCDEFGHIJ')}{rng.randrange(10 ** 4):04d}"
                       f"{rng.choice('ENOSW')}")
            elif scheme == "GMC":
                reg = f"{rng.randrange(10 ** 6, 10 ** 7)}"
            elif scheme.startswith("HCPC-"):
                reg = f"{scheme[5:]}{rng.randrange(10 ** 4, 10 ** 5)}"
            else:
                return ""
            if reg not in self.used_regs:
                self.used_regs.add(reg)
                return reg

    def person_name(self) -> tuple[str, str]:
        return self.fake.first_name(), self.fake.last_name()

    def email(self, first: str, last: str, domain: str) -> str:
        base = "".join(ch for ch in f"{first}.{last}".lower() if ch.isalnum() or ch in ".-")
        email, n = f"{base}@{domain}", 1
        while email in self.used_emails:
            n += 1
            email = f"{base}{n}@{domain}"
        self.used_emails.add(email)
        return email

    def nhs(self) -> str:
        while True:
            stem = f"999{self.rng.randrange(10 ** 6):06d}"
            check = nhs_number.calculate_checksum(stem)
            if check is None or check == 10:
                continue
            candidate = f"{stem}{check}"
            if candidate in self.used_nhs or not nhs_number.is_valid(candidate):
                continue
            self.used_nhs.add(candidate)
            return candidate

    def postcode(self, district: str) -> str:
        letters = "ABDEFGHJLNPQRSTUWXYZ"
        return (f"{district} {self.rng.randrange(1, 10)}"
                f"{self.rng.choice(letters)}{self.rng.choice(letters)}")

    def date_between(self, start: date, end: date) -> date:
        span = max((end - start).days, 0)
        return start + timedelta(days=self.rng.randint(0, span))

    # -- professionals ----------------------------------------------------

    def professional(self, role_spec, organisation: str, team: str, phone_prefix: str,
                     domain: str, sensitive: bool = False) -> _Professional:
        role, service, scheme, _ = role_spec
        first, last = self.person_name()
        return _Professional(
            name=f"{first} {last}", role=role, service=service, organisation=organisation,
            team=team, phone=self.phone(phone_prefix), email=self.email(first, last, domain),
            registration_number=self.registration(scheme), sensitive=sensitive,
        )


def _authorities(count: int) -> tuple[list[Authority], list[Council]]:
    if count < 4:
        raise ValueError("the demo needs at least 4 authorities (3 councils and a health body)")
    if count > len(COUNCILS) + 1:
        raise ValueError(f"the demo knows at most {len(COUNCILS) + 1} authorities")
    councils = list(COUNCILS[: count - 1])
    down_index = min(_DOWN_INDEX, len(councils) - 1)
    out = []
    for i, c in enumerate(councils):
        behaviour = "slow" if i == _SLOW_INDEX else "down" if i == down_index else "normal"
        out.append(Authority(
            id=c.id, name=c.name, code=c.code, coverage=[c.code], behaviour=behaviour,
            organisation=c.organisation, districts=list(c.districts),
        ))
    out.append(Authority(
        id=NATIONAL_ID, name=NATIONAL_NAME, code=NATIONAL_CODE, coverage=["national"],
        behaviour="normal", organisation=NATIONAL_ORGANISATION,
    ))
    return out, councils


def generate_world(seed: int = 2026, authorities: int = 6, children: int = 60) -> World:
    """Build the synthetic world. Deterministic for a given seed."""
    if children < 6:
        raise ValueError("the demo needs at least 6 children")
    g = _Gen(seed)
    rng = g.rng
    auths, councils = _authorities(authorities)
    by_id = {a.id: a for a in auths}
    council_by_id = {c.id: c for c in councils}
    health = by_id[NATIONAL_ID]

    # Contacts ("front doors").
    for a in auths:
        prefix = council_by_id[a.id].phone_range if a.id in council_by_id else NATIONAL_PHONE_RANGE
        what = "Front Door" if a.id in council_by_id else "Named nurse for safeguarding"
        place = council_by_id[a.id].place if a.id in council_by_id else NATIONAL_NAME
        a.contact = f"{place} {what}, {g.phone(prefix)}"

    # Professional pools.
    council_pool: dict[str, list[_Professional]] = {}
    for c in councils:
        pool = []
        for spec in _COUNCIL_ROLES:
            for _ in range(2 if spec[1] != "youth justice" and spec[2] != "HCPC-PYL" else 1):
                team = spec[3].format(place=c.place, loc=rng.choice(_LOCALITIES))
                pool.append(g.professional(spec, c.organisation, team, c.phone_range,
                                           "example.gov.uk"))
        council_pool[c.id] = pool
    health_pool: dict[str, list[_Professional]] = {}
    for key, spec in _HEALTH_ROLES.items():
        count = 2 if key in ("paediatrician", "salt") else 5
        health_pool[key] = [
            g.professional(spec, NATIONAL_ORGANISATION,
                           spec[3].format(loc=rng.choice(councils).place),
                           NATIONAL_PHONE_RANGE, "example.nhs.uk")
            for _ in range(count)
        ]
    sensitive_prof = g.professional(_SENSITIVE, NATIONAL_ORGANISATION, _SENSITIVE[3],
                                    NATIONAL_PHONE_RANGE, "example.nhs.uk", sensitive=True)

    normal_councils = [c for c in councils if by_id[c.id].behaviour == "normal"]

    # Which child gets which special part.
    order = list(range(children))
    rng.shuffle(order)
    special = {
        order[0]: "shielded",
        order[1]: "sensitive",
        order[2]: "unknown",
        order[3]: "moved",
        order[4]: "no-worker",
        order[5]: "shared",
    }

    kids: list[Child] = []
    invs: list[Involvement] = []

    def involve(child: Child, authority: Authority, prof: _Professional | None,
                past: bool, started: date | None = None) -> None:
        dob = child.date_of_birth
        earliest = max(dob, REFERENCE_DATE - timedelta(days=5 * 365))
        if past:
            start = started or g.date_between(earliest, REFERENCE_DATE - timedelta(days=200))
            end = min(start + timedelta(days=rng.randint(60, 400)),
                      REFERENCE_DATE - timedelta(days=rng.randint(20, 120)))
            end = max(end, start + timedelta(days=14))
        else:
            start = started or g.date_between(max(earliest, REFERENCE_DATE - timedelta(days=900)),
                                              REFERENCE_DATE - timedelta(days=14))
            end = None
        if prof is None:
            invs.append(Involvement(child.child_ref, authority.id, "", "", "", False,
                                    authority.organisation, "", "", "", "", start, end))
        else:
            invs.append(Involvement(
                child.child_ref, authority.id, prof.name, prof.role, prof.service,
                prof.sensitive, prof.organisation, prof.team, prof.phone, prof.email,
                prof.registration_number, start, end,
            ))
        if authority.id not in child.known_to:
            child.known_to.append(authority.id)

    def health_prof_for(child: Child) -> _Professional:
        age = (REFERENCE_DATE - child.date_of_birth).days // 365
        if age < 5:
            key = rng.choice(("health visitor", "health visitor", "salt", "paediatrician"))
        else:
            key = rng.choice(("school nurse", "school nurse", "paediatrician", "salt"))
        return rng.choice(health_pool[key])

    def council_prof(council_id: str, service: str | None = None) -> _Professional:
        pool = council_pool[council_id]
        if service:
            pool = [p for p in pool if p.service == service] or pool
        return rng.choice(pool)

    for index in range(children):
        kind = special.get(index)
        if kind is None:
            r = rng.random()
            kind = "unknown" if r < 0.15 else "multi" if r < 0.45 else "single"
        if kind in ("shielded", "sensitive", "moved", "shared", "no-worker"):
            home = rng.choice(normal_councils)
        else:
            home = rng.choice(councils)
        if kind == "sensitive":
            age_days = rng.randint(14 * 365 + 30, 17 * 365 - 30)
        elif kind == "shared":
            age_days = rng.randint(120, 4 * 365)
        else:
            age_days = rng.randint(60, 17 * 365 + 300)
        dob = REFERENCE_DATE - timedelta(days=age_days)
        female = rng.random() < 0.5
        given = g.fake.first_name_female() if female else g.fake.first_name_male()
        child = Child(
            child_ref=f"CH-{index + 1:04d}", nhs_number=g.nhs(), given_name=given,
            family_name=g.fake.last_name(), date_of_birth=dob,
            postcodes=[g.postcode(rng.choice(home.districts))], known_to=[], shielded=False,
            notes="", home_authority=home.id,
        )
        home_a = by_id[home.id]

        if kind == "unknown":
            child.notes = "Known to no authority."
        elif kind == "shielded":
            child.shielded = True
            involve(child, home_a, council_prof(home.id, "children's social care"), past=False)
            child.notes = (f"Shielded at {home_a.name}: returns a notice only, "
                           "never professionals.")
        elif kind == "sensitive":
            involve(child, health, sensitive_prof, past=False)
            involve(child, home_a, council_prof(home.id, "early help"), past=False)
            child.notes = ("Sexual health service at Yorkshire Community Health: shown only "
                           "when the basis covers sensitive services.")
        elif kind == "no-worker":
            involve(child, home_a, None, past=True)
            child.notes = f"Known to {home_a.name}, no named worker (case closed)."
        elif kind in ("moved", "shared", "multi"):
            prof = health_prof_for(child)
            involve(child, health, prof, past=kind != "shared" and rng.random() < 0.25)
            if kind == "shared" or (kind == "multi" and rng.random() < 0.4):
                # The council records the same health professional (e.g. as the
                # lead professional for early help): merged into one person.
                same = invs[-1]
                invs.append(Involvement(
                    child.child_ref, home.id, same.professional_name, same.role, same.service,
                    False, same.organisation, same.team, same.phone, same.email,
                    same.registration_number, same.from_, same.to,
                ))
                child.known_to.append(home.id)
                involve(child, home_a, council_prof(home.id, "early help"), past=False)
            elif rng.random() < 0.7:
                involve(child, home_a, council_prof(home.id), past=rng.random() < 0.3)
            if kind == "moved" or (kind == "multi" and rng.random() < 0.35):
                previous = rng.choice([c for c in councils if c.id != home.id])
                child.postcodes.append(g.postcode(rng.choice(previous.districts)))
                involve(child, by_id[previous.id], council_prof(previous.id), past=True)
            names = [by_id[a].name for a in child.known_to]
            child.notes = "Known to " + ", ".join(names) + "."
        else:  # single
            if rng.random() < 0.7:
                involve(child, home_a, council_prof(home.id), past=rng.random() < 0.25)
            else:
                involve(child, health, health_prof_for(child), past=rng.random() < 0.25)
            child.notes = f"Known to {by_id[child.known_to[0]].name}."
        kids.append(child)

    return World(seed=seed, authorities=auths, children=kids, involvements=invs)


__all__ = [
    "BEHAVIOURS",
    "COUNCILS",
    "REFERENCE_DATE",
    "SLOW_DELAY_MS",
    "Authority",
    "Child",
    "Council",
    "Involvement",
    "World",
    "district_of",
    "generate_world",
    "postcode_table",
]
