"""The kit as a witness, over real HTTP on loopback: a broker's log (its signed
checkpoints, its public proofs) that the test can rewrite, the kit app receiving
signed lookups with the ``Federator-Checkpoint`` header, real SMTP for the
admin's alert, and several processes sharing the kit's state file."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from joserfc.jwk import ECKey
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from adapters.checkpoints import Checkpoint, sign_checkpoint
from adapters.kit.app import create_kit_app
from adapters.kit.cli import main as kit_main
from adapters.kit.keys import BrokerKeys
from adapters.kit.settings import KitSettings
from adapters.kit.witness import UNCHECKED, Witness, WitnessStore, make_witness
from adapters.merkle import consistency_proof, frontier_extend, leaf_hash, root
from adapters.protocol import CHECKPOINT_HEADER, encode_body, public_jwks, sign_request
from federator.demo.mail import start_mail_server

pytestmark = pytest.mark.integration
ISSUER = "federator-test-broker"  # the kit_settings fixture's broker_issuer
BODY = {"lookup_id": "01JWITNESS0000000000000001",
        "child": {"nhs_number": "9434765919", "postcodes": ["LS6 2AB"]},
        "basis": {"type": "statutory", "power": "children-act-1989-s47", "reference": "S47-1"},
        "purpose": "Section 47 enquiry: finding services already involved",
        "requester": {"id": "user-1", "name": "Pat Asker", "role": "Social worker",
                      "organisation": "Neighbouring Council"}}


class Loopback:
    def __init__(self, app: Callable[..., Any]) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class BrokerLog(Loopback):
    """The broker's side a witness talks to: JWKS, latest checkpoint, proofs."""

    def __init__(self, key: ECKey) -> None:
        self.key = key
        self.leaves = [leaf_hash(f"record {i}".encode()) for i in range(1, 4)]
        self.proofs = 0
        super().__init__(self.wsgi)
        self.jwks_url = self.url + "/.well-known/jwks.json"

    def grow(self, n: int) -> None:
        start = len(self.leaves) + 1
        self.leaves += [leaf_hash(f"record {i}".encode()) for i in range(start, start + n)]

    def rewrite(self, index: int) -> None:
        self.leaves[index] = leaf_hash(b"rewritten")

    def checkpoint(self) -> str:
        n = len(self.leaves)
        return sign_checkpoint(Checkpoint(
            log="federator", tree_size=n, root_hash=root(self.leaves).hex(),
            head_hash=f"{n:064x}", at=datetime.now(UTC).isoformat(timespec="milliseconds")),
            self.key).signed

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        if request.path == "/.well-known/jwks.json":
            body: Any = public_jwks([self.key])
        elif request.path == "/api/v1/transparency/checkpoint":
            body = {"signed": self.checkpoint()}
        elif request.path == "/api/v1/transparency/consistency":
            self.proofs += 1
            first, second = int(request.args["first"]), int(request.args["second"])
            if second > len(self.leaves):
                return Response("{}", status=404)(environ, start_response)
            leaves = self.leaves[:second]
            frontier, _ = frontier_extend([], 0, leaves)
            body = {"first": first, "second": second,
                    "proof": [p.hex() for p in consistency_proof(first, leaves)],
                    "frontier": [h.hex() for h in frontier]}
        else:
            return Response("not found", status=404)(environ, start_response)
        return Response(json.dumps(body), content_type="application/json")(
            environ, start_response)


@pytest.fixture
def broker(broker_key: ECKey) -> Iterator[BrokerLog]:
    server = BrokerLog(broker_key)
    yield server
    server.close()


@pytest.fixture
def witnessing(kit_settings: KitSettings, broker: BrokerLog, tmp_path: Path, serve):
    """A kit trusting ``broker``, its witness state in a file, alerts collected."""
    settings = dataclasses.replace(kit_settings, jwks_url=broker.jwks_url,
                                   witness_path=str(tmp_path / "witness.json"))
    alerts: list[str] = []
    witness = Witness(WitnessStore(settings.witness_path), BrokerKeys(broker.jwks_url),
                      broker.url + "/api/v1/transparency/consistency", alert=alerts.append)
    url = serve(create_kit_app(settings, witness=witness)).url
    return url, witness, alerts


def ask(url: str, key: ECKey, checkpoint: str | None) -> requests.Response:
    body = encode_body({**BODY, "lookup_id": "01J" + uuid.uuid4().hex[:20].upper()})
    headers = {"Content-Type": "application/json", "Authorization": "Bearer " + sign_request(
        body, key, issuer=ISSUER, audience="test-cs")}
    if checkpoint:
        headers[CHECKPOINT_HEADER] = checkpoint
    return requests.post(f"{url}/lookup", data=body, headers=headers, timeout=10)


def offered(url: str, key: ECKey, witness: Witness, checkpoint: str) -> dict[str, Any]:
    response = ask(url, key, checkpoint)
    assert response.status_code == 200 and response.json()["status"] == "match"
    assert witness.wait_idle(10)
    return witness.store.read()


def test_the_kit_holds_each_newer_checkpoint_once_it_extends_the_held_one(
        witnessing, broker, broker_key):
    url, witness, alerts = witnessing
    assert requests.get(f"{url}/health", timeout=5).json()["witness"] == "none"
    assert offered(url, broker_key, witness, broker.checkpoint())["checkpoint"]["tree_size"] == 3
    broker.grow(4)
    seven = broker.checkpoint()
    state = offered(url, broker_key, witness, seven)
    assert state["status"] == "consistent" and state["checkpoint"]["tree_size"] == 7
    assert len(state["checkpoint"]["frontier"]) == 3  # 4 + 2 + 1
    broker.grow(2)
    state = offered(url, broker_key, witness, seven)  # the same again: nothing asked
    proofs = broker.proofs
    assert offered(url, broker_key, witness, seven) == state and broker.proofs == proofs
    assert requests.get(f"{url}/health", timeout=5).json()["witness"] == "consistent"
    assert alerts == []


def test_an_older_checkpoint_is_checked_against_the_held_one_and_kept_out(
        witnessing, broker, broker_key):
    url, witness, _ = witnessing
    three = broker.checkpoint()
    broker.grow(5)
    offered(url, broker_key, witness, broker.checkpoint())
    state = offered(url, broker_key, witness, three)  # a broker process with a stale copy
    assert state["status"] == "consistent" and state["checkpoint"]["tree_size"] == 8


def test_a_fork_is_raised_loudly_and_the_kit_still_answers(witnessing, broker, broker_key,
                                                           caplog):
    url, witness, alerts = witnessing
    broker.grow(4)
    held = offered(url, broker_key, witness, broker.checkpoint())["checkpoint"]
    broker.rewrite(1)
    state = offered(url, broker_key, witness, broker.checkpoint())  # 7 again, another root
    assert state["status"] == "inconsistent"
    assert state["checkpoint"] == held  # the evidence stays as it was
    assert "two different trees of 7 records" in state["problem"]["reason"]
    assert requests.get(f"{url}/health", timeout=5).json()["witness"] == "inconsistent"
    assert len(alerts) == 1 and "two different trees" in alerts[0]
    assert any("INCONSISTENT" in r.getMessage() for r in caplog.records)
    broker.grow(3)
    again = offered(url, broker_key, witness, broker.checkpoint())
    assert again["checkpoint"] == held and len(alerts) == 1  # raised once, kept


def test_a_trail_rewritten_then_grown_cannot_prove_the_held_tree(witnessing, broker,
                                                                 broker_key):
    url, witness, alerts = witnessing
    broker.grow(4)
    offered(url, broker_key, witness, broker.checkpoint())
    broker.rewrite(2)
    broker.grow(6)
    state = offered(url, broker_key, witness, broker.checkpoint())
    assert state["status"] == "inconsistent"
    assert "does not extend the tree of 7 records" in state["problem"]["reason"]
    assert len(alerts) == 1


def test_a_shrunk_trail_is_raised(witnessing, broker, broker_key):
    url, witness, alerts = witnessing
    broker.grow(6)
    offered(url, broker_key, witness, broker.checkpoint())
    del broker.leaves[5:]
    state = offered(url, broker_key, witness, broker.checkpoint())  # 5, below the held 9
    assert state["status"] == "inconsistent"
    assert "can no longer prove the tree of 9 records" in state["problem"]["reason"]
    assert alerts


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_broker_or_an_unknown_key_is_no_alarm(kit_settings, broker, broker_key,
                                                              tmp_path, serve):
    from adapters.protocol import generate_signing_key

    alerts: list[str] = []
    witness = Witness(WitnessStore(tmp_path / "w.json"), BrokerKeys(broker.jwks_url),
                      f"http://127.0.0.1:{_closed_port()}/proofs", alert=alerts.append)
    url = serve(create_kit_app(dataclasses.replace(kit_settings, jwks_url=broker.jwks_url),
                               witness=witness)).url
    state = offered(url, broker_key, witness, broker.checkpoint())
    assert state == {} and alerts == []  # nothing held yet: the next request tries again
    assert witness.check(broker.checkpoint()) == UNCHECKED
    witness.proof_url = broker.url + "/api/v1/transparency/consistency"
    offered(url, broker_key, witness, broker.checkpoint())
    broker.grow(2)
    stranger = BrokerLog(generate_signing_key("stranger"))
    try:
        stranger.grow(9)
        state = offered(url, broker_key, witness, stranger.checkpoint())
    finally:
        stranger.close()
    assert state["status"] == "consistent" and state["checkpoint"]["tree_size"] == 3
    assert alerts == []


def test_proofs_are_fetched_straight_from_the_broker_never_through_a_redirect(
        kit_settings, broker, tmp_path, serve, monkeypatch):
    from flask import Flask, redirect

    bounce = Flask("bounce")

    @bounce.route("/proofs")
    def proofs():  # a redirect elsewhere, however good the answer there
        return redirect(broker.url + "/api/v1/transparency/consistency", code=302)

    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_closed_port()}")
    alerts: list[str] = []
    witness = Witness(WitnessStore(tmp_path / "w.json"), BrokerKeys(broker.jwks_url),
                      serve(bounce).url + "/proofs", alert=alerts.append)
    broker.grow(2)
    assert witness.check(broker.checkpoint()) == UNCHECKED
    assert witness.store.read() == {} and alerts == []
    witness.proof_url = broker.url + "/api/v1/transparency/consistency"  # the proxy is ignored
    assert witness.check(broker.checkpoint()) == "consistent"


def test_a_state_file_that_cannot_be_read_is_kept_aside_not_overwritten(tmp_path):
    path = tmp_path / "w.json"
    path.write_text("{ torn", encoding="utf-8")
    store = WitnessStore(path)
    assert store.read() == {}
    [aside] = tmp_path.glob("w.json.unreadable-*")
    assert aside.read_text(encoding="utf-8") == "{ torn"
    with store.update() as state:
        state["status"] = "consistent"
    assert aside.read_text(encoding="utf-8") == "{ torn"


def test_the_admin_is_emailed_through_smtp(kit_settings, broker, broker_key, tmp_path, serve):
    mail = start_mail_server(tmp_path / "mail")
    try:
        settings = dataclasses.replace(
            kit_settings, jwks_url=broker.jwks_url, smtp_url=mail.url,
            admin_email="kit-admin@test-cs.example.invalid",
            witness_path=str(tmp_path / "w.json"))
        witness = make_witness(settings, BrokerKeys(settings.jwks_url))
        url = serve(create_kit_app(settings, witness=witness)).url
        offered(url, broker_key, witness, broker.checkpoint())
        broker.rewrite(0)
        offered(url, broker_key, witness, broker.checkpoint())
        (message,) = mail.catcher.wait_for(1)
        assert message["To"] == "kit-admin@test-cs.example.invalid"
        assert "audit trail was rewritten" in message["Subject"]
        text = message.get_content()
        assert "two different trees of 3 records" in text
        assert "federator audit verify --checkpoint" in text
        assert "Amara" not in text and "9434765919" not in text
    finally:
        mail.stop()


def test_the_admin_is_emailed_through_govuk_notify(kit_settings, broker, broker_key, tmp_path,
                                                   serve):
    from support.fake_notify import FakeNotify

    fake = FakeNotify()
    notify = serve(fake.app())
    (tmp_path / "notify.key").write_text(fake.api_key, encoding="utf-8")
    settings = dataclasses.replace(
        kit_settings, jwks_url=broker.jwks_url, admin_email="kit-admin@test-cs.example.invalid",
        notify_via="govuk_notify", notify_template_id=fake.add_template(),
        notify_api_key_file=str(tmp_path / "notify.key"), notify_base_url=notify.url,
        witness_path=str(tmp_path / "w.json"))
    witness = make_witness(settings, BrokerKeys(settings.jwks_url))
    url = serve(create_kit_app(settings, witness=witness)).url
    offered(url, broker_key, witness, broker.checkpoint())
    broker.rewrite(0)
    offered(url, broker_key, witness, broker.checkpoint())
    for _ in range(100):
        if fake.sent:
            break
        threading.Event().wait(0.05)
    (sent,) = fake.sent
    assert sent["to"] == "kit-admin@test-cs.example.invalid"
    assert "audit trail was rewritten" in sent["content"]["subject"]
    assert "two different trees of 3 records" in sent["content"]["body"]
    assert "Amara" not in json.dumps(sent) and "9434765919" not in json.dumps(sent)


# -- the state file, shared by workers ---------------------------------------------------------


def _bump(path: str, times: int, go: Any) -> None:
    store = WitnessStore(path)
    go.wait(60)
    for _ in range(times):
        with store.update() as state:
            state["count"] = state.get("count", 0) + 1


def test_workers_sharing_the_state_file_take_turns(tmp_path):
    path = str(tmp_path / "witness.json")
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    workers = [context.Process(target=_bump, args=(path, 150, go)) for _ in range(4)]
    for w in workers:
        w.start()
    go.set()  # all at once
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    assert json.loads(Path(path).read_text())["count"] == 600  # none lost, never torn


# -- an authority without the kit ---------------------------------------------------------------


def test_witness_fetch_holds_and_checks_for_an_authority_without_the_kit(broker, tmp_path):
    state = tmp_path / "fhir-authority-witness.json"
    args = ["witness", "fetch", "--broker", broker.url, "--state", str(state)]
    first = CliRunner().invoke(kit_main, args)
    assert first.exit_code == 0, first.output
    assert "holding the checkpoint of 3 records" in first.output
    broker.grow(5)
    assert "holding the checkpoint of 8 records" in CliRunner().invoke(kit_main, args).output
    broker.rewrite(4)
    bad = CliRunner().invoke(kit_main, args)
    assert bad.exit_code == 1
    assert "witness: inconsistent" in bad.output
    unreachable = CliRunner().invoke(kit_main, ["witness", "fetch", "--broker",
                                                f"http://127.0.0.1:{_closed_port()}",
                                                "--state", str(tmp_path / "x.json")])
    assert unreachable.exit_code == 2


def test_witness_reset_keeps_the_evidence_aside_and_starts_again(broker, tmp_path):
    state = tmp_path / "witness.json"
    fetch = ["witness", "fetch", "--broker", broker.url, "--state", str(state)]
    assert CliRunner().invoke(kit_main, fetch).exit_code == 0
    broker.rewrite(1)
    assert CliRunner().invoke(kit_main, fetch).exit_code == 1  # inconsistent, and stays so
    evidence = json.loads(state.read_text())
    assert CliRunner().invoke(kit_main, fetch).exit_code == 1
    reset = ["witness", "reset", "--state", str(state)]
    for args, words in [(reset, "Missing option '--reason'"),
                        ([*reset, "--reason", "  "], "say why the witness is reset"),
                        (["witness", "reset", "--reason", "x"], "give --config"),
                        ([*reset, "--reason", "x", "--config", str(state)], "give --config")]:
        refused = CliRunner().invoke(kit_main, args)
        assert refused.exit_code == 2 and words in refused.output, refused.output
    done = CliRunner().invoke(kit_main, [*reset, "--reason", "broker restored, INC-42"])
    assert done.exit_code == 0, done.output
    (aside,) = tmp_path.glob("witness.json.reset-*")
    assert json.loads(aside.read_text()) == evidence  # kept as it was
    note = json.loads(state.read_text())["reset"]
    assert note["reason"] == "broker restored, INC-42" and note["previous"] == aside.name
    assert note["previous_status"] == "inconsistent"
    again = CliRunner().invoke(kit_main, fetch)
    assert again.exit_code == 0 and "witness: consistent" in again.output
    assert "holding the checkpoint of" in again.output
    empty = CliRunner().invoke(kit_main, ["witness", "reset", "--state",
                                          str(tmp_path / "none.json"), "--reason", "x"])
    assert empty.exit_code == 0 and "nothing to reset" in empty.output
