"""The places the demo can stand up: councils, their postcode districts, and
the one national health body. Static data, no behaviour beyond look-ups."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Council:
    """A local authority the demo can stand up (static data)."""

    id: str
    name: str
    code: str  # GSS code
    organisation: str
    place: str  # short place name used for team names
    districts: tuple[str, ...]  # postcode districts (outward codes)
    phone_range: str  # "0113 496 0" -> four-digit suffix, "01632 960" -> three


def _seq(prefix: str, numbers) -> tuple[str, ...]:
    return tuple(f"{prefix}{n}" for n in numbers)


#: At least nine councils; the first ``authorities - 1`` are used.
COUNCILS: tuple[Council, ...] = (
    Council("leeds-cs", "Leeds Children's Services", "E08000035", "Leeds City Council",
            "Leeds", _seq("LS", range(1, 29)), "0113 496 0"),
    Council("bradford-cs", "Bradford Children's Services", "E08000032",
            "City of Bradford Metropolitan District Council", "Bradford",
            (*_seq("BD", range(1, 23)), "LS29"), "01632 960"),
    Council("kirklees-cs", "Kirklees Children's Services", "E08000034", "Kirklees Council",
            "Kirklees", (*_seq("HD", range(1, 10)), *_seq("WF", range(12, 18))), "01632 960"),
    Council("calderdale-cs", "Calderdale Children's Services", "E08000033",
            "Calderdale Metropolitan Borough Council", "Calderdale",
            (*_seq("HX", range(1, 8)), "OL14"), "01632 960"),
    Council("wakefield-cs", "Wakefield Children's Services", "E08000036",
            "Wakefield Council", "Wakefield", _seq("WF", range(1, 12)), "01632 960"),
    Council("york-cs", "York Children's Services", "E06000014", "City of York Council", "York",
            ("YO1", "YO10", "YO19", "YO23", "YO24", "YO26", "YO30", "YO31", "YO32"),
            "01632 960"),
    Council("sheffield-cs", "Sheffield Children's Services", "E08000039", "Sheffield City Council",
            "Sheffield", (*_seq("S", range(1, 15)), "S17", "S20", "S35"), "0114 496 0"),
    Council("barnsley-cs", "Barnsley Children's Services", "E08000016",
            "Barnsley Metropolitan Borough Council", "Barnsley", _seq("S", range(70, 76)),
            "0114 496 0"),
    Council("rotherham-cs", "Rotherham Children's Services", "E08000018",
            "Rotherham Metropolitan Borough Council", "Rotherham", _seq("S", range(60, 67)),
            "0114 496 0"),
    Council("doncaster-cs", "Doncaster Children's Services", "E08000017",
            "City of Doncaster Council", "Doncaster", _seq("DN", range(1, 13)), "0114 496 0"),
    Council("hull-cs", "Hull Children's Services", "E06000010", "Hull City Council", "Hull",
            _seq("HU", range(1, 10)), "01632 960"),
    Council("north-yorkshire-cs", "North Yorkshire Children's Services", "E06000065",
            "North Yorkshire Council", "North Yorkshire",
            (*_seq("HG", range(1, 6)), "YO7", "YO8", "YO11", "YO12", "YO13", "YO14", "YO17",
             "YO18", "YO21", "YO22", "BD23", "BD24", *_seq("DL", range(6, 12))),
            "01632 960"),
)

NATIONAL_ID = "yorkshire-health"
NATIONAL_NAME = "Yorkshire Community Health"
NATIONAL_CODE = "RXX"
NATIONAL_ORGANISATION = "Yorkshire Community Health NHS Trust"
NATIONAL_PHONE_RANGE = "0113 496 0"

#: Index (into the councils in use) of the slow one and of the down one.
_SLOW_INDEX = 1
_DOWN_INDEX = 3


def postcode_table() -> list[tuple[str, str, str]]:
    """(district, gss_code, area_name) for every council the demo knows; the
    source of ``config/postcodes.csv``."""
    rows = []
    for c in COUNCILS:
        for d in c.districts:
            rows.append((d, c.code, f"{c.place} (approximate)"))
    return rows


def district_of(postcode: str) -> str:
    """The outward code of a postcode ("LS6 2AB" -> "LS6")."""
    text = postcode.strip().upper()
    if " " in text:
        return text.split()[0]
    return text[:-3] if len(text) > 4 else text
