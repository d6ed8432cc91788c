"""The federator-lookup/1 wire protocol: answers, signing and verifying."""

from __future__ import annotations

import base64
import json

import pytest
from joserfc import jws, jwt
from joserfc.jwk import KeySet

from adapters.protocol import (
    MAX_TOKEN_LIFETIME_S,
    InvalidAnswer,
    RequestRefused,
    VerifiedRequest,
    body_hash,
    encode_body,
    generate_signing_key,
    left_out_detail,
    parse_answer,
    public_jwks,
    sign_request,
    verify_request,
)

LOOKUP = "01JD0000000000000000000000"
NOW = 1_790_000_000
BODY = encode_body({"lookup_id": LOOKUP, "child": {"nhs_number": "9434765919"}})
KEY = generate_signing_key("broker-1")
PUBLIC = KeySet.import_key_set(public_jwks([KEY]))


def professional(**over):
    person = {"name": "Sam Patel", "role": "Social worker", "service": "children's social care",
              "organisation": "Leeds City Council", "team": "West", "phone": "0113 000 0000",
              "email": "sam.patel@example.gov.uk", "current": True, "from": "2025-09-01",
              "to": None}
    person.update(over)
    return person


def answer(**over):
    data = {"lookup_id": LOOKUP, "status": "match", "confidence": 0.9,
            "professionals": [professional()], "notice": None}
    data.update(over)
    return json.dumps(data).encode()


# -- parse_answer ----------------------------------------------------------------------


def test_a_good_answer_parses():
    parsed = parse_answer(answer(), LOOKUP)
    assert parsed["status"] == "match"
    assert parsed["confidence"] == 0.9
    assert parsed["professionals"] == [{**professional(), "registration_number": None}]


def test_unknown_fields_are_dropped_everywhere():
    raw = answer(extra="x", professionals=[professional(case_notes="private", dob="2015")])
    parsed = parse_answer(raw, LOOKUP)
    assert "extra" not in parsed
    assert "case_notes" not in parsed["professionals"][0]
    assert "dob" not in parsed["professionals"][0]


def test_from_keeps_its_wire_name():
    person = parse_answer(answer(), LOOKUP)["professionals"][0]
    assert person["from"] == "2025-09-01" and "from_" not in person


def test_registration_number_is_kept_for_merging():
    raw = answer(professionals=[professional(registration_number="SW123")])
    assert parse_answer(raw, LOOKUP)["professionals"][0]["registration_number"] == "SW123"


def test_missing_optional_fields_take_defaults():
    raw = answer(professionals=[{"name": "Jo", "email": "jo@example.gov.uk"}])
    person = parse_answer(raw, LOOKUP)["professionals"][0]
    assert person == {"name": "Jo", "role": "", "service": "", "organisation": "", "team": None,
                      "phone": None, "email": "jo@example.gov.uk", "registration_number": None,
                      "current": True, "from": None, "to": None}


@pytest.mark.parametrize("bad", [
    {"name": None}, {"name": ""}, {"name": "x" * 201}, {"phone": "1" * 51},
    {"email": "e" * 255}, {"current": "sometimes"}, {"role": ["list"]},
])
def test_a_professional_that_cannot_be_shown_is_left_out(bad):
    raw = answer(professionals=[professional(**bad), professional(name="Jo Bloggs")])
    names = [p["name"] for p in parse_answer(raw, LOOKUP)["professionals"]]
    assert names == ["Jo Bloggs"]


def test_a_professional_without_a_name_key_is_left_out():
    nameless = professional()
    del nameless["name"]
    assert parse_answer(answer(professionals=[nameless]), LOOKUP)["professionals"] == []


@pytest.mark.parametrize("contact", [{"phone": None, "email": None}, {"phone": "", "email": ""}])
def test_a_professional_with_no_way_to_reach_them_is_left_out(contact):
    assert parse_answer(answer(professionals=[professional(**contact)]),
                        LOOKUP)["professionals"] == []


@pytest.mark.parametrize("blank", [{"name": "   "}, {"name": "\t\n"},
                                   {"phone": " ", "email": None}, {"phone": None, "email": "  "},
                                   {"phone": " ", "email": " "}])
def test_a_blank_name_or_blank_contact_counts_as_missing(blank):
    assert parse_answer(answer(professionals=[professional(**blank)]),
                        LOOKUP)["professionals"] == []


@pytest.mark.parametrize("contact", [{"phone": None}, {"email": None}])
def test_one_way_to_reach_them_is_enough(contact):
    assert len(parse_answer(answer(professionals=[professional(**contact)]),
                            LOOKUP)["professionals"]) == 1


@pytest.mark.parametrize("status", ["no_match", "declined"])
def test_only_a_match_carries_professionals(status):
    parsed = parse_answer(answer(status=status, notice="Ask the front door"), LOOKUP)
    assert parsed["professionals"] == []
    assert parsed["notice"] == "Ask the front door"


def test_an_answer_for_another_lookup_is_refused():
    with pytest.raises(InvalidAnswer, match="another lookup"):
        parse_answer(answer(), "01JDOTHER00000000000000000")


@pytest.mark.parametrize("raw", [b"", b"not json", b"\xff\xfe", b"[1, 2]", b'"match"', b"null"])
def test_an_answer_that_is_not_a_json_object_is_refused(raw):
    with pytest.raises(InvalidAnswer):
        parse_answer(raw, LOOKUP)


@pytest.mark.parametrize("change", [
    {"status": "maybe"}, {"status": None}, {"confidence": 1.5}, {"confidence": -0.1},
    {"confidence": "high"}, {"notice": "n" * 2001}, {"professionals": "Sam"},
    {"lookup_id": None},
])
def test_an_answer_breaking_the_protocol_is_refused(change):
    with pytest.raises(InvalidAnswer):
        parse_answer(answer(**change), LOOKUP)


@pytest.mark.parametrize("missing", ["lookup_id", "status"])
def test_required_answer_fields(missing):
    data = json.loads(answer())
    del data[missing]
    with pytest.raises(InvalidAnswer):
        parse_answer(json.dumps(data).encode(), LOOKUP)


def test_a_confidence_that_is_not_a_number_is_refused():
    raw = answer().replace(b'"confidence": 0.9', b'"confidence": NaN')
    assert b"NaN" in raw
    with pytest.raises(InvalidAnswer):
        parse_answer(raw, LOOKUP)


def test_an_old_answer_parses_as_before_without_the_new_fields():
    parsed = parse_answer(answer(), LOOKUP)
    assert set(parsed) == {"lookup_id", "status", "confidence", "professionals", "notice"}


def test_the_optional_match_fields_are_kept():
    ref = "Qm9vLWJvb19fYmFyLWJhei1xdXV4LTAxMjM0NTY3ODkw"
    parsed = parse_answer(answer(record_ref=ref, matched_on=["given_name", "date_of_birth"]),
                          LOOKUP)
    assert parsed["record_ref"] == ref
    assert parsed["matched_on"] == ["given_name", "date_of_birth"]
    possible = parse_answer(answer(status="no_match", professionals=[], notice="call us",
                                   matched_on=["family_name"], ask_for=["nhs_number",
                                                                        "postcode"]), LOOKUP)
    assert possible["ask_for"] == ["nhs_number", "postcode"]
    assert possible["matched_on"] == ["family_name"]


def test_a_record_ref_is_kept_on_a_match_only():
    for status in ("no_match", "declined"):
        parsed = parse_answer(answer(status=status, record_ref="abc"), LOOKUP)
        assert "record_ref" not in parsed


@pytest.mark.parametrize("change", [
    {"record_ref": ""}, {"record_ref": "r" * 129}, {"record_ref": "has space"},
    {"record_ref": "line\n"}, {"record_ref": 42},
    {"matched_on": ["shoe_size"]}, {"matched_on": "given_name"},
    {"matched_on": ["postcode"] * 6}, {"ask_for": ["address"]}, {"ask_for": [1]},
])
def test_the_optional_match_fields_are_validated(change):
    with pytest.raises(InvalidAnswer):
        parse_answer(answer(**change), LOOKUP)


def test_confidence_bounds_and_absence():
    assert parse_answer(answer(confidence=0.0), LOOKUP)["confidence"] == 0.0
    assert parse_answer(answer(confidence=1.0), LOOKUP)["confidence"] == 1.0
    data = json.loads(answer())
    del data["confidence"]
    assert parse_answer(json.dumps(data).encode(), LOOKUP)["confidence"] is None


# -- body hash and signing -------------------------------------------------------------


def test_body_hash_is_unpadded_base64url_sha256():
    assert body_hash(b"") == "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
    assert "=" not in body_hash(b"x") and len(body_hash(b"x")) == 43


def test_encode_body_is_compact_utf8():
    assert encode_body({"name": "Zoë", "n": 1}) == '{"name":"Zoë","n":1}'.encode()


def claims_of(token: str) -> dict:
    return jwt.decode(token, PUBLIC, algorithms=["ES256"]).claims


def test_signed_token_carries_the_design_claims():
    token = sign_request(BODY, KEY, issuer="federator", audience="leeds-cs", now=NOW)
    claims = claims_of(token)
    assert claims["iss"] == "federator" and claims["aud"] == "leeds-cs"
    assert claims["iat"] == NOW and claims["exp"] == NOW + 60
    assert claims["bh"] == body_hash(BODY)
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "ES256", "kid": "broker-1", "typ": "JWT"}


def test_token_lifetime_is_capped_at_120_seconds():
    assert MAX_TOKEN_LIFETIME_S == 120
    token = sign_request(BODY, KEY, issuer="f", audience="a", lifetime_s=3600, now=NOW)
    assert claims_of(token)["exp"] == NOW + 120


def test_every_token_has_a_fresh_jti():
    jtis = {claims_of(sign_request(BODY, KEY, issuer="f", audience="a", now=NOW))["jti"]
            for _ in range(20)}
    assert len(jtis) == 20


def test_public_jwks_holds_no_private_part():
    published = public_jwks([KEY])["keys"][0]
    assert published["kid"] == "broker-1" and published["kty"] == "EC"
    assert "d" not in published


# -- verify_request --------------------------------------------------------------------


class Seen:
    def __init__(self) -> None:
        self.jtis: dict[str, int] = {}

    def __call__(self, jti: str, exp: int) -> bool:
        if jti in self.jtis:
            return True
        self.jtis[jti] = exp
        return False


def verify(authorization, body=BODY, *, now=NOW, audience="leeds-cs", seen=None, **kw):
    return verify_request(authorization, body, keys=lambda kid: PUBLIC, audience=audience,
                          seen_before=seen or Seen(), now=now, **kw)


def bearer(body=BODY, *, audience="leeds-cs", key=KEY, now=NOW, **kw) -> str:
    return "Bearer " + sign_request(body, key, issuer="federator", audience=audience,
                                    now=now, **kw)


def raw_token(claims: dict, *, key=KEY, alg="ES256") -> str:
    return "Bearer " + jwt.encode({"alg": alg, "kid": key.kid}, claims, key)


def good_claims(**over):
    claims = {"iss": "federator", "aud": "leeds-cs", "iat": NOW, "exp": NOW + 60,
              "jti": "j-1", "bh": body_hash(BODY)}
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def reason(authorization, body=BODY, **kw) -> str:
    with pytest.raises(RequestRefused) as info:
        verify(authorization, body, **kw)
    return info.value.reason


def test_a_good_request_verifies():
    seen = Seen()
    verified = verify(bearer(), seen=seen)
    assert isinstance(verified, VerifiedRequest)
    assert verified.issuer == "federator"
    assert verified.expires == NOW + 60
    assert seen.jtis == {verified.jti: NOW + 60}


@pytest.mark.parametrize("authorization", [None, "", "Basic dXNlcjpwYXNz", "Token abc",
                                           "Bearer"])
def test_missing_bearer_token(authorization):
    assert reason(authorization) == "missing bearer token"


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "eyJ.eyJ.sig", "..."])
def test_a_malformed_token_is_a_bad_signature(token):
    assert reason("Bearer " + token) == "bad signature"


def test_a_tampered_payload_is_a_bad_signature():
    header, payload, signature = bearer()[len("Bearer "):].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["aud"] = "bradford-cs"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert reason(f"Bearer {header}.{forged}.{signature}", audience="bradford-cs") == (
        "bad signature")


def test_a_tampered_signature_is_a_bad_signature():
    token = bearer()
    last = token[-2]
    assert reason(token[:-2] + ("A" if last != "A" else "B") + token[-1]) == "bad signature"


def test_a_token_made_by_another_key_with_another_kid_is_refused():
    intruder = generate_signing_key("intruder")
    assert reason(bearer(key=intruder)) == "bad signature"


def test_a_token_made_by_another_key_claiming_the_brokers_kid_is_refused():
    impostor = generate_signing_key("broker-1")
    assert reason(bearer(key=impostor)) == "bad signature"


def test_an_unsigned_token_is_refused():
    header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"broker-1"}').rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps(good_claims()).encode()).rstrip(b"=")
    assert reason(f"Bearer {header.decode()}.{payload.decode()}.") == "bad signature"


def test_a_payload_that_is_not_a_claims_object_is_a_bad_signature():
    token = jws.serialize_compact({"alg": "ES256", "kid": KEY.kid}, b"[1,2]", KEY)
    assert reason("Bearer " + token) == "bad signature"


def test_the_key_set_is_asked_for_the_tokens_kid():
    asked = []

    def keys(kid):
        asked.append(kid)
        return PUBLIC

    verify_request(bearer(), BODY, keys=keys, audience="leeds-cs", seen_before=Seen(), now=NOW)
    assert asked == ["broker-1"]


def test_wrong_audience():
    assert reason(bearer(audience="bradford-cs")) == "wrong audience"


def test_audience_may_be_a_list_holding_ours():
    verify(raw_token(good_claims(aud=["york-health", "leeds-cs"])))
    assert reason(raw_token(good_claims(aud=["york-health"]))) == "wrong audience"


def test_wrong_issuer_when_one_is_expected():
    verify(bearer(), issuer="federator")
    assert reason(bearer(), issuer="another-broker") == "wrong issuer"


def test_an_expired_token_is_refused():
    token = bearer(now=NOW - 200)
    assert reason(token) == "token expired"


def test_expiry_allows_the_clock_leeway_and_no_more():
    token = bearer(lifetime_s=60)
    verify(token, now=NOW + 60)
    verify(token, now=NOW + 60 + 4)
    assert reason(token, now=NOW + 60 + 6) == "token expired"
    assert reason(token, now=NOW + 60 + 1, leeway_s=0) == "token expired"


@pytest.mark.parametrize("lifetime", [121, 600, 3600])
def test_a_lifetime_over_120_seconds_is_refused(lifetime):
    token = raw_token(good_claims(exp=NOW + lifetime))
    assert reason(token) == "token lifetime not allowed"


def test_a_lifetime_of_exactly_120_seconds_is_allowed():
    verify(raw_token(good_claims(exp=NOW + 120)))


def test_a_token_issued_in_the_future_is_refused():
    assert reason(raw_token(good_claims(iat=NOW + 30, exp=NOW + 90))) == (
        "token lifetime not allowed")
    verify(raw_token(good_claims(iat=NOW + 5, exp=NOW + 65)))


def test_a_body_hash_mismatch_is_refused():
    token = bearer()
    assert reason(token, body=BODY + b" ") == "body hash mismatch"
    assert reason(token, body=encode_body({"lookup_id": "other"})) == "body hash mismatch"


def test_a_replayed_request_is_refused():
    seen = Seen()
    token = bearer()
    verify(token, seen=seen)
    assert reason(token, seen=seen) == "replayed request"


def test_a_refused_request_does_not_use_up_its_jti():
    seen = Seen()
    token = bearer()
    assert reason(token, body=b"{}", seen=seen) == "body hash mismatch"
    assert seen.jtis == {}
    verify(token, seen=seen)


@pytest.mark.parametrize("claim", ["iss", "aud", "iat", "exp", "jti", "bh"])
def test_each_missing_claim_is_refused_by_name(claim):
    claims = good_claims()
    del claims[claim]
    assert reason(raw_token(claims)) == f"missing claim {claim}"


@pytest.mark.parametrize("change", [{"exp": "later"}, {"iat": "now"}, {"exp": [1]}])
def test_time_claims_must_be_numbers(change):
    assert reason(raw_token(good_claims(**change))) == "bad time claims"


def test_the_bearer_token_may_have_surrounding_space():
    verify("Bearer  " + bearer()[len("Bearer "):] + " ")


# -- fields are what they claim ----------------------------------------------------------


@pytest.mark.parametrize("email", [
    "a@x.invalid?bcc=attacker@evil.example", "a@x.invalid,attacker@evil.example",
    "a b@x.invalid", "a@b@x.invalid", "a@x.invalid&cc=b@evil.example", "a%40evil.example@x.gov.uk",
    "a@x.invalid#frag", "<a@x.invalid>", "a@x", "@x.invalid", "a@", ".a@x.invalid",
    "a.@x.invalid", "a..b@x.invalid", "a@-x.invalid", "a@x..invalid", "a@x.invalid\na@y.invalid",
    "mailto:a@x.invalid", "José@x.invalid", "a@x.invalid\u202e", "a@x.invalid\u0000",
])
def test_an_email_that_is_not_a_plain_address_leaves_the_professional_out(email):
    parsed = parse_answer(answer(professionals=[professional(email=email, phone=None),
                                                professional(name="Jo Bloggs")]), LOOKUP)
    assert [p["name"] for p in parsed["professionals"]] == ["Jo Bloggs"]
    assert parsed["left_out"] == {"invalid email": 1}


@pytest.mark.parametrize("email", ["sam.patel@example.gov.uk", "o'brien@leeds.gov.uk",
                                   "a+team@x.invalid", "A_B-c@sub.nhs.net", "x@xn--p1ai.example"])
def test_a_plain_address_is_kept(email):
    [person] = parse_answer(answer(professionals=[professional(email=email)]),
                            LOOKUP)["professionals"]
    assert person["email"] == email


@pytest.mark.parametrize("phone", [
    "call 0113 000 0000", "0113 000 0000; a@evil.example", "javascript:alert(1)",
    "+44 113\u202e000", "0113\n000", "12", "--", "tel:01130000000", "0113 000 0000 ext",
])
def test_a_phone_number_with_other_characters_leaves_the_professional_out(phone):
    parsed = parse_answer(answer(professionals=[professional(phone=phone, email=None)]), LOOKUP)
    assert parsed["professionals"] == []
    assert parsed["left_out"] == {"invalid phone": 1}


@pytest.mark.parametrize("phone", ["0113 000 0000", "+44 (0)113 000-0000", "111",
                                   "0113 000 0000 ext 123", "0113 000 0000 ext. 12",
                                   "0113 000 0000x12"])
def test_phone_characters_are_kept(phone):
    [person] = parse_answer(answer(professionals=[professional(phone=phone)]),
                            LOOKUP)["professionals"]
    assert person["phone"] == phone


@pytest.mark.parametrize("field, value", [
    ("from", "yesterday"), ("from", "2025-13-01"), ("to", "2025-02-30"),
    ("from", "2025-09-01T00:00:00Z"), ("to", "2025-9-1"), ("from", 20250901),
])
def test_from_and_to_are_iso_dates_or_the_professional_is_left_out(field, value):
    parsed = parse_answer(answer(professionals=[professional(**{field: value})]), LOOKUP)
    assert parsed["professionals"] == []
    assert parsed["left_out"] == {f"invalid {field}": 1}


@pytest.mark.parametrize("field", ["name", "role", "organisation", "team", "service"])
def test_a_name_or_role_holding_controls_or_bidi_overrides_is_left_out(field):
    parsed = parse_answer(answer(professionals=[professional(**{field: "Sam\u202e1234"})]),
                          LOOKUP)
    assert parsed["left_out"] == {f"invalid {field}": 1}


def test_blank_contact_fields_are_absent_not_invalid_and_contact_is_trimmed():
    [person] = parse_answer(answer(professionals=[professional(phone="  ", email=" a@x.gov.uk\n")]
                                   ), LOOKUP)["professionals"]
    assert person["phone"] is None and person["email"] == "a@x.gov.uk"
    parsed = parse_answer(answer(professionals=[professional(phone=" ", email="")]), LOOKUP)
    assert parsed["left_out"] == {"no phone or e-mail": 1}


def test_professionals_after_the_limit_are_left_out_unread_and_counted():
    many = [professional(name=f"Person {i}") for i in range(250)] + [{"name": None}] * 10
    parsed = parse_answer(answer(professionals=many), LOOKUP, max_professionals=200)
    assert [p["name"] for p in parsed["professionals"]] == [f"Person {i}" for i in range(200)]
    assert parsed["left_out"] == {"more than 200 in one answer": 60}


def test_the_default_limit_is_two_hundred():
    parsed = parse_answer(answer(professionals=[professional()] * 201), LOOKUP)
    assert len(parsed["professionals"]) == 200
    assert parsed["left_out"] == {"more than 200 in one answer": 1}


def test_left_out_detail_counts_reasons_without_values():
    assert left_out_detail(None) is None and left_out_detail({}) is None
    assert left_out_detail({"invalid email": 2, "no name": 1}) == (
        "3 professionals left out: invalid email (2); no name (1)")
    assert left_out_detail({"invalid phone": 1}) == "1 professional left out: invalid phone (1)"


def test_an_answer_with_nothing_left_out_has_no_left_out():
    assert "left_out" not in parse_answer(answer(), LOOKUP)
