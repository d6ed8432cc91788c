"""The alert a flagged record makes, its RFC 5424 form, and the settings that
configure the channels (``federator.audit.alert_senders``): pure, no sockets."""

from __future__ import annotations

import pytest

from federator.audit.alert_senders import alert_of, make_alerts, syslog_messages
from federator.config import ConfigError, Settings

RECORD = {"seq": 41, "event": "lookup.requested", "at": "2026-12-03T22:10:00.000+00:00",
          "actor_id": "p1", "actor_organisation": "Leeds", "purpose": "Assessment",
          "child_pseudonym": "abc", "basis": {"type": "safeguarding", "justification": "j"},
          "flags": [{"flag": "out_of_hours", "reason": "Made at 22:10 on a Thursday"},
                    {"flag": "safeguarding_basis", "reason": "Safeguarding basis"}]}


def test_an_alert_is_the_seq_and_flags_only():
    alert = alert_of(RECORD, broker="fed", public_url="https://broker.example")
    assert alert == {
        "type": "federator.audit.flag", "broker": "fed", "seq": 41,
        "event": "lookup.requested", "at": "2026-12-03T22:10:00.000+00:00",
        "flags": [{"flag": "out_of_hours", "words": "Out of hours"},
                  {"flag": "safeguarding_basis",
                   "words": "Safeguarding basis: consent not sought"}],
        "record_url": "https://broker.example/audit/records/41",
        "queue_url": "https://broker.example/audit/queue"}
    assert alert_of({**RECORD, "flags": []}, broker="f", public_url="") is None


def test_syslog_messages_follow_rfc_5424_one_per_flag():
    alert = alert_of(RECORD, broker="fed", public_url="")
    assert alert is not None
    one, two = syslog_messages({**alert, "event": 'odd"]\\'}, hostname="broker 1",
                               app="fed", procid=7)
    assert one.startswith(b'<108>1 2026-12-03T22:10:00.000+00:00 broker1 fed 7 flag '
                          b'[federator@32473 seq="41" flag="out_of_hours" '
                          b'event="odd\\"\\]\\\\"] \xef\xbb\xbfAudit flag out_of_hours')
    assert b'flag="safeguarding_basis"' in two


@pytest.mark.parametrize(("extra", "named"), [
    ({"alert_syslog": "nowhere"}, "FEDERATOR_ALERT_SYSLOG"),
    ({"alert_syslog": "host:99999"}, "FEDERATOR_ALERT_SYSLOG"),
    ({"alert_webhook": "ftp://x"}, "FEDERATOR_ALERT_WEBHOOK"),
    ({"alert_email": ("a@b.example",)}, "FEDERATOR_ALERT_SMTP_URL"),
    ({"alert_email": ("a@b.example",), "alert_smtp_url": "mail.example"},
     "FEDERATOR_ALERT_SMTP_URL"),
])
def test_a_bad_channel_setting_is_named(extra, named):
    with pytest.raises(ConfigError, match=named):
        make_alerts(Settings(env="development", **extra))


def test_production_webhooks_are_https_and_no_setting_means_no_alerts():
    with pytest.raises(ConfigError, match="https"):
        make_alerts(Settings(alert_webhook="http://hook.example/x"))
    assert make_alerts(Settings(alert_webhook="https://hook.example/x")) is not None
    assert make_alerts(Settings(env="development")) is None
