"""The adapter kit tells the child's worker through GOV.UK Notify: a real kit
server answering signed lookups over HTTP, the official Notify client, and a
faithful Notify on loopback (tests/support/fake_notify.py) that checks the
client's JWT as Notify does and answers with Notify's own errors."""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey
from support import kit_notify
from support.fake_notify import FakeNotify, Template, serve
from support.kit_notify import AMARA, AUTHORITY, BEN, ISSUER, TEAM, Kit
from support.log_capture import identity_strings, leaks

from adapters.kit.app import create_kit_app
from adapters.kit.govuk_notify import read_api_key, sender
from adapters.kit.notify import Notifier
from adapters.kit.settings import KitSettings, SettingsError, settings_from_mapping
from federator.demo.mail import MailCatcher
from federator.demo.serving import bind

pytestmark = pytest.mark.integration

csv_path = kit_notify.csv_path
jwks = kit_notify.jwks
key = kit_notify.key


@pytest.fixture
def notify() -> Iterator[tuple[FakeNotify, str]]:
    fake = FakeNotify()
    for fake_, served in serve(fake):
        yield fake_, served.url


def start(notify: tuple[FakeNotify, str], jwks: str, csv_path: Path, key: ECKey,
          key_file: Path, *, template_id: str | None = None, **notifier: Any) -> Kit:
    fake, url = notify
    key_file.write_text(fake.api_key + "\n", encoding="utf-8")
    settings = KitSettings(
        authority_id=AUTHORITY, name="Notify Children's Services", jwks_url=jwks,
        broker_issuer=ISSUER, csv_path=str(csv_path), team_mailbox=TEAM, notify="immediate",
        notify_via="govuk_notify", notify_template_id=template_id or fake.add_template(),
        notify_api_key_file=str(key_file), notify_base_url=url)
    built = None
    if notifier:  # short backoffs for the retry tests
        from adapters.kit.govuk_notify import make_sender
        built = Notifier(make_sender(settings), mode="immediate", **notifier)
    app = create_kit_app(settings, notifier=built)
    return Kit(bind(0).start(app), app, None, key)  # type: ignore[arg-type]


@pytest.fixture
def kits() -> Iterator[list[Kit]]:
    started: list[Kit] = []
    yield started
    for kit in started:
        kit.served.stop()
        kit.notifier.close()


def test_the_worker_is_told_through_notify_with_the_smtp_text_and_nothing_more(
        notify, kits, jwks, csv_path, key, tmp_path, caplog) -> None:
    fake, _ = notify
    caplog.set_level(logging.DEBUG)
    kit = start(notify, jwks, csv_path, key, tmp_path / "notify.key")
    kits.append(kit)
    amara, ben = kit.lookup(AMARA), kit.lookup(BEN)
    assert amara.json()["status"] == ben.json()["status"] == "match"
    assert kit.notifier.wait_idle(10)
    assert kit.notifier.sent == 2 and kit.notifier.failed == 0
    assert sorted(m["to"] for m in fake.sent) == sorted(["sam.patel@example.invalid", TEAM])
    to_sam = next(m for m in fake.sent if m["to"] == "sam.patel@example.invalid")
    subject, body = to_sam["content"]["subject"], to_sam["content"]["body"]
    assert subject == "Federator: a lookup about your child C-1"
    assert amara.json()["lookup_id"] in body and "Our reference:  C-1" in body
    assert "Pat Asker" in body and "  > Section 47 enquiry" in body
    # the child's identity, the other professional and the case reference stay out
    sent_text = json.dumps(fake.sent)
    for value in (*identity_strings([AMARA, BEN]), "Jo Reed", "LS6", "S47-REF-9"):
        assert value not in sent_text, value
    # the API key's secret is never logged (the client logs every request at DEBUG)
    logged = [r.getMessage() for r in caplog.records]
    assert not leaks(logged, {fake.secret, fake.api_key})


def test_rate_limits_and_server_errors_are_tried_again(notify, kits, jwks, csv_path, key,
                                                       tmp_path) -> None:
    fake, _ = notify
    fake.faults[:] = [429, 500, 503]
    kit = start(notify, jwks, csv_path, key, tmp_path / "k", backoff_s=0.05)
    kits.append(kit)
    assert kit.lookup(AMARA).json()["status"] == "match"
    assert kit.notifier.wait_idle(10)
    assert fake.requests == 4 and len(fake.sent) == 1
    assert kit.notifier.sent == 1 and kit.notifier.failed == 0


@pytest.mark.parametrize("spoil", ["unknown_template", "clock_ahead", "wrong_secret"])
def test_refusals_are_not_tried_again(notify, kits, jwks, csv_path, key, tmp_path, caplog,
                                      spoil) -> None:
    fake, _ = notify
    template_id = str(uuid.uuid4()) if spoil == "unknown_template" else None
    if spoil == "clock_ahead":
        fake.clock_offset_s = 45  # 403: "Your system clock must be accurate to within 30 s"
    kit = start(notify, jwks, csv_path, key, tmp_path / "k", template_id=template_id,
                backoff_s=0.05)
    if spoil == "wrong_secret":
        fake.secret = str(uuid.uuid4())  # the kit's key no longer signs for this service
    kits.append(kit)
    assert kit.lookup(AMARA).json()["status"] == "match"
    assert kit.notifier.wait_idle(10)
    assert fake.requests == 1 and fake.sent == []
    assert kit.notifier.failed == 1 and kit.notifier.sent == 0
    refused = [r.getMessage() for r in caplog.records if "not tried again" in r.getMessage()]
    expected = "HTTP 400 (BadRequestError)" if spoil == "unknown_template" \
        else "HTTP 403 (AuthError)"
    assert refused and expected in refused[0]


# -- the fake's own checks, against tokens made here (joserfc), not by the client ------


def _token(fake: FakeNotify, claims: dict[str, Any], *, alg: str = "HS256",
           secret: str | None = None) -> str:
    return jwt.encode({"alg": alg, "typ": "JWT"}, claims,
                      OctKey.import_key(secret or fake.secret), algorithms=[alg])


def _post(url: str, token: str | None, body: dict[str, Any]) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{url}/v2/notifications/email", json=body, headers=headers,
                         timeout=5)


def test_the_fake_checks_the_jwt_and_the_body_as_notify_documents(notify) -> None:
    fake, url = notify
    template = fake.add_template(Template(subject="((subject))", body="((body))"))
    good = {"email_address": "a@example.invalid", "template_id": template,
            "personalisation": {"subject": "s", "body": "b"}}
    now = int(time.time())
    cases = [
        (None, good, 401, "Unauthorized: authentication token must be provided"),
        (_token(fake, {"iss": fake.service_id, "iat": now - 31}), good, 403,
         "Error: Your system clock must be accurate to within 30 seconds"),
        (_token(fake, {"iss": fake.service_id, "iat": now}, secret=str(uuid.uuid4())),
         good, 403, "Invalid token: API key not found"),
        (_token(fake, {"iss": fake.service_id, "iat": now}, alg="HS512"), good, 403,
         "Invalid token: algorithm used is not HS256"),
        (_token(fake, {"iat": now}), good, 403, "Invalid token: iss field not provided"),
        (_token(fake, {"iss": fake.service_id}), good, 403,
         "Invalid token: iat field not provided"),
        (_token(fake, {"iss": fake.service_id, "iat": now}),
         {**good, "personalisation": {"subject": "s"}}, 400, "Missing personalisation: body"),
        (_token(fake, {"iss": fake.service_id, "iat": now}),
         {**good, "template_id": "nope"}, 400, "template_id is not a valid UUID"),
    ]
    for token, body, status, message in cases:
        answer = _post(url, token, body)
        assert answer.status_code == status, message
        assert answer.json() == {"errors": [{"error": answer.json()["errors"][0]["error"],
                                             "message": message}], "status_code": status}
    ok = _post(url, _token(fake, {"iss": fake.service_id, "iat": now}), good)
    assert ok.status_code == 201 and ok.json()["content"]["body"] == "b"


def test_the_official_client_is_accepted_and_its_token_is_hs256_with_iss_and_iat(
        notify) -> None:
    fake, url = notify
    template = fake.add_template()
    from email.message import EmailMessage
    message = EmailMessage()
    message["To"], message["Subject"] = "w@example.invalid", "Subject line"
    message.set_content("Line one\nLine two\n")
    sender(fake.api_key, template, base_url=url)(message)
    assert fake.sent[0]["content"] == {"subject": "Subject line", "body": "Line one\nLine two",
                                       "from_email": fake.sent[0]["content"]["from_email"]}
    # what the client signs (decoded without trusting it)
    captured: list[str] = []
    original = fake.authorise
    fake.authorise = lambda h: captured.append(h or "") or original(h)  # type: ignore[method-assign]
    sender(fake.api_key, template, base_url=url)(message)
    header, claims = (json.loads(base64.urlsafe_b64decode(p + "==")) for p in
                      captured[0].split()[1].split(".")[:2])
    assert header["alg"] == "HS256" and claims["iss"] == fake.service_id
    assert abs(claims["iat"] - time.time()) < 5


# -- settings -------------------------------------------------------------------


BASE = {"authority_id": "a", "name": "A", "jwks_url": "http://127.0.0.1:1/jwks",
        "broker_issuer": "b", "csv_path": "kit.csv", "notify": "immediate",
        "notify_via": "govuk_notify"}


def test_settings_name_what_notify_needs(tmp_path) -> None:
    with pytest.raises(SettingsError, match="notify_template_id: required"):
        settings_from_mapping(BASE, environ={})
    with_template = {**BASE, "notify_template_id": str(uuid.uuid4())}
    with pytest.raises(SettingsError, match="notify_api_key_file: required"):
        settings_from_mapping(with_template, environ={})
    with pytest.raises(SettingsError, match="notify_template_id: must be the template's id"):
        settings_from_mapping({**BASE, "notify_template_id": "welcome"}, environ={})
    with pytest.raises(SettingsError, match="notify_base_url: must be an https"):
        settings_from_mapping({**with_template, "notify_base_url": "http://notify.example"},
                              environ={"KIT_NOTIFY_API_KEY": "x"})
    with pytest.raises(SettingsError, match="notify_via: must be one of smtp, govuk_notify"):
        settings_from_mapping({**BASE, "notify_via": "pigeon"}, environ={})
    s = settings_from_mapping({**with_template, "notify_api_key_file": "notify.key"},
                              base_dir=tmp_path, environ={})
    assert s.notify_api_key_file == str(tmp_path / "notify.key") and s.smtp_url is None
    # the key itself: from the file, else the environment; a bad one is named, not shown
    key_value = f"kit-{uuid.uuid4()}-{uuid.uuid4()}"
    (tmp_path / "notify.key").write_text(key_value + "\n", encoding="utf-8")
    assert read_api_key(str(tmp_path / "notify.key")) == key_value
    assert read_api_key(None, {"KIT_NOTIFY_API_KEY": key_value}) == key_value
    with pytest.raises(ValueError, match=r"KIT_NOTIFY_API_KEY: not a GOV\.UK Notify API key") as e:
        read_api_key(None, {"KIT_NOTIFY_API_KEY": "secret-but-wrong"})
    assert "secret-but-wrong" not in str(e.value)
    # smtp stays the default, and needs its URL
    with pytest.raises(SettingsError, match="smtp_url: required"):
        settings_from_mapping({**BASE, "notify_via": "smtp"}, environ={})
    assert MailCatcher  # the SMTP route is covered by test_transparency_kit_notify.py


def test_serve_names_an_unreadable_key_file_and_stops(tmp_path) -> None:
    from click.testing import CliRunner

    from adapters.kit.cli import main

    (tmp_path / "kit.csv").write_text(",".join(kit_notify.HEADER) + "\n", encoding="utf-8")
    (tmp_path / "kit.toml").write_text("\n".join(f"{k} = {json.dumps(v)}" for k, v in {
        **BASE, "notify_template_id": str(uuid.uuid4()),
        "notify_api_key_file": "missing.key"}.items()) + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["serve", "--config", str(tmp_path / "kit.toml"),
                                       "--port", "0"])
    assert result.exit_code == 1
    assert "notify_api_key_file: cannot read" in result.output
