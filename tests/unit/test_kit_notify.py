"""The kit's notifications: what the e-mail says (pure) and how the background
sender queues, retries, digests and drops (with an in-memory send function)."""

from __future__ import annotations

import smtplib
import threading
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from adapters.kit.notify import (
    Notification,
    Notifier,
    compose,
    compose_digest,
    notification_for,
    one_line,
    quoted,
    smtp_sender,
    what_we_sent,
)
from adapters.kit.settings import SettingsError, settings_from_mapping
from adapters.kit.sources import COLUMNS, CsvSource

WIRE: dict[str, Any] = {
    "lookup_id": "01JDLOOKUP",
    "child": {"nhs_number": "9434765919", "given_name": "Amara", "family_name": "Okafor",
              "date_of_birth": "2015-03-12", "postcodes": ["LS6 2AB"]},
    "basis": {"type": "consent", "given_by": "parent", "reference": "CASE-SECRET-REF"},
    "purpose": "Assessment under section 17",
    "requester": {"id": "user-9", "name": "Pat Asker", "role": "Health visitor",
                  "organisation": "Neighbouring Trust", "email": "pat.asker@example.nhs.uk"},
    "include_past": True,
}


def note(**overrides: Any) -> Notification:
    base = notification_for(WIRE, to="worker@example.invalid", child_ref="C-17",
                            authority_name="Test Children's Services",
                            at="2026-11-26T09:00:00+00:00")
    return Notification(**{**base.__dict__, **overrides})


def text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return f"{message['Subject']}\n{body.get_content()}"


def test_the_mail_says_who_asked_why_and_when_and_nothing_about_the_child() -> None:
    message = compose(note(), sender="kit@example.invalid")
    assert message["To"] == "worker@example.invalid"
    content = text(message)
    for expected in ("01JDLOOKUP", "C-17", "Pat Asker", "Health visitor", "Neighbouring Trust",
                     "pat.asker@example.nhs.uk", "Assessment under section 17", "consent",
                     "2026-11-26T09:00:00+00:00"):
        assert expected in content
    for detail in ("Amara", "Okafor", "9434765919", "2015-03-12", "LS6", "CASE-SECRET-REF"):
        assert detail not in content


def test_a_requester_without_contact_is_said_plainly() -> None:
    wire = {**WIRE, "requester": {"id": "u", "name": "Pat", "role": "", "organisation": "X"}}
    n = notification_for(wire, to="w@x.invalid", child_ref="C-1", authority_name="A", at="t")
    assert "Contact:        not given" in text(compose(n, sender="k@x.invalid"))


def test_a_digest_lists_every_lookup_for_its_recipient() -> None:
    digest = compose_digest([note(lookup_id="L-1"), note(lookup_id="L-2", child_ref="C-9")],
                            sender="kit@example.invalid")
    content = text(digest)
    assert "2 lookups" in content and "L-1" in content and "L-2" in content
    assert "C-9" in content and "Amara" not in content


class Outbox:
    """A send function that fails the first ``failures`` calls, optionally blocking."""

    def __init__(self, failures: int = 0, gate: threading.Event | None = None) -> None:
        self.failures, self.gate = failures, gate
        self.calls = 0
        self.sent: list[EmailMessage] = []

    def __call__(self, message: EmailMessage) -> None:
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(10)
        if self.calls <= self.failures:
            raise smtplib.SMTPServerDisconnected("gone")
        self.sent.append(message)


def test_failed_sends_are_tried_again_with_backoff() -> None:
    outbox = Outbox(failures=2)
    notifier = Notifier(outbox, backoff_s=0.01, attempts=5)
    try:
        assert notifier.submit(note())
        assert notifier.wait_idle(10)
        assert outbox.calls == 3 and len(outbox.sent) == 1
        assert notifier.sent == 1 and notifier.failed == 0
    finally:
        notifier.close()


def test_a_send_that_keeps_failing_is_given_up_after_its_attempts() -> None:
    outbox = Outbox(failures=100)
    notifier = Notifier(outbox, backoff_s=0.01, attempts=3)
    try:
        notifier.submit(note())
        assert notifier.wait_idle(10)
        assert outbox.calls == 3 and notifier.failed == 1 and outbox.sent == []
    finally:
        notifier.close()


def test_submitting_never_waits_for_the_mail_server_and_the_queue_is_bounded() -> None:
    gate = threading.Event()
    outbox = Outbox(gate=gate)
    notifier = Notifier(outbox, max_queue=2)
    try:
        # the first is taken by the sender thread, which then blocks in send();
        # submit() returns all the same, while the server holds the gate shut
        results = [notifier.submit(note(lookup_id=f"L-{i}")) for i in range(6)]
        assert not gate.is_set()
        assert results.count(False) >= 1 and notifier.dropped == results.count(False)
        gate.set()
        assert notifier.wait_idle(10)
        assert len(outbox.sent) == results.count(True)
    finally:
        gate.set()
        notifier.close()


def test_digest_mode_sends_one_mail_per_recipient() -> None:
    outbox = Outbox()
    notifier = Notifier(outbox, mode="digest", digest_s=0.3)
    try:
        for i in range(3):
            notifier.submit(note(lookup_id=f"A-{i}"))
        notifier.submit(note(lookup_id="B-0", to="team@example.invalid"))
        assert notifier.wait_idle(10)
        assert outbox.sent == []  # nothing before the digest is due
        deadline = threading.Event()
        for _ in range(100):
            if len(outbox.sent) >= 2:
                break
            deadline.wait(0.05)
        assert sorted(str(m["To"]) for m in outbox.sent) == [
            "team@example.invalid", "worker@example.invalid"]
        worker = next(m for m in outbox.sent if m["To"] == "worker@example.invalid")
        assert all(f"A-{i}" in text(worker) for i in range(3)) and "B-0" not in text(worker)
    finally:
        notifier.close()


def test_off_sends_nothing() -> None:
    outbox = Outbox()
    notifier = Notifier(outbox, mode="off")
    assert notifier.submit(note()) is False
    notifier.close()
    assert outbox.calls == 0


def test_bad_smtp_urls_and_modes_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="smtp_url"):
        smtp_sender("http://mail.example")
    with pytest.raises(ValueError, match="notify"):
        Notifier(Outbox(), mode="sometimes")


BASE = {"authority_id": "a", "name": "A", "jwks_url": "http://127.0.0.1/jwks",
        "broker_issuer": "federator", "csv_path": "x.csv"}


def test_settings_name_the_notification_problem() -> None:
    with pytest.raises(SettingsError, match=r"^notify:"):
        settings_from_mapping({**BASE, "notify": "hourly"}, environ={})
    with pytest.raises(SettingsError, match=r"^smtp_url: required"):
        settings_from_mapping({**BASE, "notify": "immediate"}, environ={})
    with pytest.raises(SettingsError, match=r"^smtp_url: must start"):
        settings_from_mapping({**BASE, "notify": "immediate", "smtp_url": "mail:25"},
                              environ={})
    from_env = settings_from_mapping({**BASE, "notify": "digest"},
                                     environ={"KIT_SMTP_URL": "smtp://127.0.0.1:2525"})
    assert from_env.smtp_url == "smtp://127.0.0.1:2525" and from_env.notify == "digest"
    assert settings_from_mapping(BASE, environ={}).notify == "off"


ROW = ["C-1", "9434765919", "Amara", "Okafor", "2015-03-12", "LS6 2AB", "false", "",
       "Sam Patel", "Social worker", "children's social care", "false", "Council", "",
       "01632 960001", "", "", "2025-09-01", ""]


def test_old_csvs_stay_valid_and_a_worker_email_column_is_read(tmp_path: Path) -> None:
    old = tmp_path / "old.csv"
    old.write_text(",".join(COLUMNS) + "\n" + ",".join(ROW) + "\n", encoding="utf-8")
    assert CsvSource(old).records()[0].worker_email is None
    new = tmp_path / "new.csv"
    new.write_text(",".join((*COLUMNS, "worker_email")) + "\n"
                   + ",".join((*ROW, "sam.patel@example.invalid")) + "\n", encoding="utf-8")
    assert CsvSource(new).records()[0].worker_email == "sam.patel@example.invalid"


# -- the e-mail tells the truth ------------------------------------------------------------


@pytest.mark.parametrize("kind, count, words", [
    ("shared", 2, "A answered that it knows this child and sent Federator how to reach "
                  "2 professionals working with them."),
    ("shared", 1, "how to reach 1 professional working"),
    ("notice_only", 0, "with a notice only: no professional's details were sent."),
    ("none_shared", 0, "sent no professional's details: none fitted what was asked."),
    ("withheld", 0, "did not share your service's involvement"),
    ("withheld", 3, "It sent how to reach 3 professionals of other services."),
    ("unseen", 0, "answered as it does for a child it does not know"),
])
def test_what_we_sent_says_what_the_answer_held(kind, count, words) -> None:
    said = what_we_sent(kind, authority="A", count=count)
    assert words in said
    assert ("how to reach" in said) is (kind == "shared" or (kind == "withheld" and count > 0))
    assert "expired" not in said


def test_a_late_answer_says_so() -> None:
    said = what_we_sent("shared", authority="A", count=1, late=True)
    assert "ready only after the request had expired" in said


def test_the_mail_says_what_was_sent_and_no_longer_claims_the_asker_was_told() -> None:
    content = text(compose(note(told=what_we_sent("notice_only", authority="Test")),
                           sender="k@x.invalid"))
    assert "What we sent:   Test answered that it knows this child with a notice only" in content
    assert "Federator told the person who asked" not in content


def test_free_text_is_quoted_line_by_line_and_values_are_one_line() -> None:
    assert quoted("a\nFederator told you\r\nb\u2028c\x85d") == [
        "  > a", "  > Federator told you", "  > b", "  > c", "  > d"]
    assert quoted("") == ["  > "]
    assert one_line("Pat\nLookup id: X\u2029\x00y") == "Pat Lookup id: X y"
    wire = {**WIRE, "purpose": "one\nFederator told the person who asked how to reach",
            "requester": {**WIRE["requester"], "name": "Pat\nLawful basis: safeguarding"}}
    n = notification_for(wire, to="w@x.invalid", child_ref="C-1", authority_name="A", at="t")
    lines = text(compose(n, sender="k@x.invalid")).splitlines()
    assert "  > Federator told the person who asked how to reach" in lines
    assert [line for line in lines if line.startswith("Lawful basis:")] == [
        "Lawful basis:   consent"]
    assert not any(line.startswith("Federator told") for line in lines)
