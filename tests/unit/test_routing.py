"""Routing: postcode districts, area derivation, choosing endpoints, the postcode table."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from federator.lookup.routing import (
    NATIONAL,
    Endpoint,
    Route,
    areas_for,
    load_postcode_table,
    postcode_district,
    route,
)

REAL_TABLE = Path(__file__).resolve().parents[2] / "config" / "postcodes.csv"
LEEDS, BRADFORD, YORK = "E08000035", "E08000032", "E06000014"
TABLE = {"LS6": LEEDS, "LS10": LEEDS, "BD1": BRADFORD, "YO1": YORK, "M1": "E08000003"}


def endpoint(id_, coverage, status="active"):
    return Endpoint(id=id_, name=id_.title(), code=coverage[0], coverage=tuple(coverage),
                    protocol="federator-lookup/1", url=f"https://{id_}.example/f",
                    timeout_ms=3000, contact="c", status=status)


def ids(endpoints):
    return [e.id for e in endpoints]


# -- postcode_district ---------------------------------------------------------------


@pytest.mark.parametrize(("postcode", "district"), [
    ("LS6 2AB", "LS6"),
    ("ls6 2ab", "LS6"),
    ("LS62AB", "LS6"),
    ("  LS6   2AB  ", "LS6"),
    ("LS10 1AA", "LS10"),
    ("M1 1AE", "M1"),
    ("EC1A 1BB", "EC1A"),
    ("W1A 0AX", "W1A"),
    ("B33 8TH", "B33"),
    ("LS6", "LS6"),
    ("LS10", "LS10"),
    ("EC1A", "EC1A"),
    ("LS6\t2AB", "LS6"),
])
def test_postcode_district_is_the_outward_code(postcode, district):
    assert postcode_district(postcode) == district


@given(outward=st.from_regex(r"\A[A-Z]{1,2}[0-9][A-Z0-9]?\Z"),
       inward=st.from_regex(r"\A[0-9][A-Z]{2}\Z"),
       sep=st.sampled_from(["", " ", "  ", "\t"]),
       lower=st.booleans())
def test_postcode_district_recovers_any_outward_code(outward, inward, sep, lower):
    text = f"{outward}{sep}{inward}"
    assert postcode_district(text.lower() if lower else text) == outward


# -- areas_for -----------------------------------------------------------------------


def test_areas_for_maps_each_known_district_to_its_area():
    assert areas_for(["LS6 2AB", "BD1 1AA"], TABLE) == {LEEDS, BRADFORD}


def test_areas_for_collapses_districts_of_the_same_area():
    assert areas_for(["LS6 2AB", "LS10 1AA"], TABLE) == {LEEDS}


def test_areas_for_ignores_unknown_districts():
    assert areas_for(["ZZ9 9ZZ", "YO1 7HH"], TABLE) == {YORK}


def test_areas_for_does_not_confuse_ls1_with_ls10():
    assert areas_for(["LS1 1AA"], {"LS10": LEEDS}) == set()


def test_areas_for_no_postcodes_is_empty():
    assert areas_for([], TABLE) == set()


# -- route ---------------------------------------------------------------------------


ENDPOINTS = [
    endpoint("leeds-cs", [LEEDS]),
    endpoint("bradford-cs", [BRADFORD]),
    endpoint("york-health", [YORK]),
    endpoint("nhs-national", [NATIONAL]),
    endpoint("leeds-suspended", [LEEDS], status="suspended"),
    endpoint("leeds-pending", [LEEDS], status="pending"),
    endpoint("bradford-rejected", [BRADFORD], status="rejected"),
    endpoint("multi", [YORK, BRADFORD]),
]


def test_route_asks_local_authorities_for_the_postcode_and_national_ones():
    plan = route(ENDPOINTS, areas=[], postcodes=["LS6 2AB"], table=TABLE)
    assert isinstance(plan, Route)
    assert ids(plan.ask) == ["leeds-cs", "nhs-national"]
    assert ids(plan.unavailable) == ["leeds-suspended"]
    assert plan.areas == frozenset({LEEDS})


def test_route_adds_explicit_areas_to_those_of_the_postcodes():
    plan = route(ENDPOINTS, areas=[BRADFORD], postcodes=["LS6 2AB"], table=TABLE)
    assert ids(plan.ask) == ["leeds-cs", "bradford-cs", "nhs-national", "multi"]
    assert plan.areas == frozenset({LEEDS, BRADFORD})


def test_route_matches_an_endpoint_on_any_of_its_covered_areas():
    plan = route(ENDPOINTS, areas=[YORK], postcodes=[], table=TABLE)
    assert ids(plan.ask) == ["york-health", "nhs-national", "multi"]


def test_route_without_areas_asks_only_national_endpoints():
    plan = route(ENDPOINTS, areas=[], postcodes=[], table=TABLE)
    assert ids(plan.ask) == ["nhs-national"]
    assert plan.unavailable == ()
    assert plan.areas == frozenset()


def test_route_unknown_postcode_asks_only_national_endpoints():
    plan = route(ENDPOINTS, areas=[], postcodes=["ZZ9 9ZZ"], table=TABLE)
    assert ids(plan.ask) == ["nhs-national"]


def test_route_never_asks_pending_or_rejected_endpoints():
    plan = route(ENDPOINTS, areas=[LEEDS, BRADFORD], postcodes=[], table=TABLE, scope="all")
    chosen = ids(plan.ask) + ids(plan.unavailable)
    assert "leeds-pending" not in chosen
    assert "bradford-rejected" not in chosen


def test_route_scope_all_asks_every_active_endpoint_whatever_the_area():
    plan = route(ENDPOINTS, areas=[], postcodes=[], table=TABLE, scope="all")
    assert ids(plan.ask) == ["leeds-cs", "bradford-cs", "york-health", "nhs-national", "multi"]
    assert ids(plan.unavailable) == ["leeds-suspended"]


def test_route_is_targeted_by_default_not_a_broadcast():
    plan = route(ENDPOINTS, areas=[YORK], postcodes=[], table=TABLE)
    assert "leeds-cs" not in ids(plan.ask)
    assert "bradford-cs" not in ids(plan.ask)


def test_suspended_endpoints_are_reported_unavailable_never_asked():
    plan = route(ENDPOINTS, areas=[LEEDS], postcodes=[], table=TABLE)
    assert "leeds-suspended" in ids(plan.unavailable)
    assert "leeds-suspended" not in ids(plan.ask)
    assert all(e.status == "active" for e in plan.ask)
    assert all(e.status == "suspended" for e in plan.unavailable)


def test_route_with_no_endpoints_asks_nobody():
    plan = route([], areas=[LEEDS], postcodes=["LS6 2AB"], table=TABLE)
    assert plan.ask == () and plan.unavailable == ()
    assert plan.areas == frozenset({LEEDS})


@given(st.lists(st.sampled_from([LEEDS, BRADFORD, YORK, "E06000001"]), max_size=4),
       st.lists(st.sampled_from(["LS6 2AB", "BD1 1AA", "YO1 7HH", "ZZ9 9ZZ"]), max_size=4))
def test_route_chooses_exactly_the_endpoints_meeting_the_areas(areas, postcodes):
    plan = route(ENDPOINTS, areas=areas, postcodes=postcodes, table=TABLE)
    wanted = set(areas) | areas_for(postcodes, TABLE)
    assert plan.areas == wanted
    expected = [e for e in ENDPOINTS if e.status in ("active", "suspended")
                and (NATIONAL in e.coverage or wanted & set(e.coverage))]
    assert list(plan.ask) == [e for e in expected if e.status == "active"]
    assert list(plan.unavailable) == [e for e in expected if e.status == "suspended"]


# -- load_postcode_table -------------------------------------------------------------


def test_load_postcode_table_reads_district_to_gss(tmp_path):
    path = tmp_path / "postcodes.csv"
    path.write_text("district,gss_code,area_name\nls6 , E08000035 ,Leeds\nBD1,E08000032,\n"
                    ",E09000001,blank\n", encoding="utf-8")
    assert load_postcode_table(path) == {"LS6": LEEDS, "BD1": BRADFORD}


def test_load_postcode_table_without_area_names(tmp_path):
    path = tmp_path / "postcodes.csv"
    path.write_text("district,gss_code\nYO1,E06000014\n", encoding="utf-8")
    assert load_postcode_table(path) == {"YO1": YORK}


def test_real_postcode_table_loads_and_is_well_formed():
    table = load_postcode_table(REAL_TABLE)
    lines = [line for line in REAL_TABLE.read_text(encoding="utf-8").splitlines()[1:] if line]
    assert len(table) == len(lines), "a district is listed twice in config/postcodes.csv"
    assert table["LS6"] == LEEDS
    for district, gss in table.items():
        assert district == district.strip().upper() and district
        assert postcode_district(district) == district
        assert len(gss) == 9 and gss[0] in "EWSN" and gss[1:].isdigit(), (district, gss)


def test_real_postcode_table_routes_the_design_example():
    table = load_postcode_table(REAL_TABLE)
    assert LEEDS in areas_for(["LS6 2AB"], table)
    assert len(areas_for(["LS6 2AB", "BD1 1AA"], table)) == 2
