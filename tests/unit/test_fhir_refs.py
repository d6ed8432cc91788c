"""References and URLs as FHIR servers write them (``adapters.fhir_refs``) and one
lookup's reading budget and partial reasons (``adapters.fhir_paging``)."""

from __future__ import annotations

from adapters.fhir_paging import (
    FOREIGN_NEXT_LINK,
    FOREIGN_REFERENCE,
    READ_CAP,
    Reading,
    partial_detail,
    self_base,
)
from adapters.fhir_refs import Foreign, declared_base, locate, normalise, reference_key

BASE = "https://proxy.trust.example/R4"
INTERNAL = "http://fhir-internal:8080/fhir"


def test_next_links_on_the_registered_base_or_origin() -> None:
    assert locate(f"{BASE}/CareTeam?_page=2", BASE) == ("base", "/CareTeam?_page=2")
    # scheme and host case, the default port: the same origin
    assert locate("HTTPS://Proxy.Trust.Example:443/R4/CareTeam?p=2", BASE) == (
        "base", "/CareTeam?p=2")
    # the same origin, another path: asked there, on the registered origin
    assert locate("https://proxy.trust.example/fhir/CareTeam?p=2", BASE) == (
        "origin", "/fhir/CareTeam?p=2")


def test_links_on_a_declared_base_are_asked_on_the_registered_one() -> None:
    assert locate(f"{INTERNAL}/CareTeam?p=2", BASE) is None
    assert locate(f"{INTERNAL}/CareTeam?p=2", BASE, [INTERNAL]) == ("base", "/CareTeam?p=2")
    assert locate("http://fhir-internal:8080/other/CareTeam", BASE, [INTERNAL]) is None


def test_links_to_other_servers_are_never_to_be_asked() -> None:
    for url in ("https://evil.example/R4/CareTeam?p=2",
                "https://proxy.trust.example.evil.example/R4/CareTeam",
                "https://proxy.trust.example:8443/R4/CareTeam",
                "http://proxy.trust.example/R4/CareTeam",  # another scheme: another origin
                "https://user@proxy.trust.example/R4/CareTeam",
                "file:///etc/passwd", "javascript:alert(1)", "/R4/CareTeam"):
        assert locate(url, BASE) is None, url


def test_a_bundles_self_link_declares_its_base() -> None:
    assert declared_base(f"{INTERNAL}/CareTeam?patient=Patient/1", "CareTeam") == INTERNAL
    assert declared_base(f"{INTERNAL}/Patient?x=1", "CareTeam") is None
    assert self_base({"link": [{"relation": "self", "url": f"{INTERNAL}/CareTeam"}]},
                     "CareTeam") == INTERNAL


def test_versioned_absolute_and_foreign_references() -> None:
    assert reference_key("Practitioner/p1", BASE) == "Practitioner/p1"
    assert reference_key("Practitioner/p1/_history/2", BASE) == "Practitioner/p1"
    assert reference_key(f"{BASE}/Practitioner/p1/_history/3", BASE) == "Practitioner/p1"
    assert reference_key(f"{INTERNAL}/Practitioner/p1", BASE, [INTERNAL]) == "Practitioner/p1"
    assert reference_key("https://other.example/fhir/Practitioner/p9/_history/1", BASE) == \
        Foreign("Practitioner", "other.example")
    assert reference_key("urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0", BASE) is None
    assert reference_key("Practitioner?identifier=x", BASE) is None


def test_normalise_keys_contained_versioned_and_foreign_references() -> None:
    team = {"resourceType": "CareTeam", "id": "t1",
            "contained": [{"resourceType": "Practitioner", "id": "p1",
                           "name": [{"text": "Dr A"}]},
                          {"resourceType": "PractitionerRole", "id": "r1",
                           "practitioner": {"reference": "#p1"}}],
            "participant": [{"member": {"reference": "#r1"}},
                            {"member": {"reference": "Practitioner/p2/_history/4"}},
                            {"member": {"reference": "https://other.example/Practitioner/p3",
                                        "display": "Dr C"}},
                            {"member": {"reference": "#unknown"}}]}
    done = normalise(team, "CareTeam/t1", BASE)
    members = [p["member"] for p in done.resource["participant"]]
    assert members == [{"reference": "CareTeam/t1#r1"}, {"reference": "Practitioner/p2"},
                       {"display": "Dr C"}, {}]
    assert done.contained["CareTeam/t1#r1"]["practitioner"] == {"reference": "CareTeam/t1#p1"}
    assert done.contained["CareTeam/t1#p1"]["name"] == [{"text": "Dr A"}]
    assert done.foreign == [Foreign("Practitioner", "other.example")]
    assert "contained" not in done.resource


def test_partial_reasons_are_named_and_carry_no_values() -> None:
    reading = Reading(BASE, max_pages=2, max_reads=1)
    assert reading.take_read() and not reading.take_read()
    reading.foreign_next("CareTeam", "https://evil.example/R4/CareTeam?patient=Patient/1")
    reading.add_foreign([Foreign("Practitioner", "other.example")] * 2)
    partial = reading.outcome_partial()
    assert set(partial) == {READ_CAP, FOREIGN_NEXT_LINK, FOREIGN_REFERENCE}
    assert partial[FOREIGN_NEXT_LINK] == (
        "the next page of CareTeam results is on another server (evil.example): not followed")
    assert partial[FOREIGN_REFERENCE] == ("2 references to another server not followed: "
                                          "Practitioner at other.example")
    detail = partial_detail(partial)
    assert detail is not None and detail.startswith("partial answer: more than 1 referenced")
    assert "Patient/1" not in detail
    assert partial_detail({}) is None
