"""The kit as a witness of the broker's audit trail (rules: ``adapters.witness``).

Every verified lookup hands the ``Federator-Checkpoint`` header to
:meth:`Witness.offer`, which never blocks the answer: a thread of the kit's own
checks the signature (the broker's keys, as for requests), fetches a
consistency proof from the broker when the tree grew, and holds the newest.
On a fork or a shrink it raises it loudly: the state says ``inconsistent``
(``/health`` shows ``"witness": "inconsistent"``), the log says why (sizes and
hashes only), and the kit's admin gets an e-mail; the kit goes on answering.
The held checkpoint stays as it was, the evidence: ``federator-adapter witness
show`` prints it for ``federator audit verify --checkpoint``. After the broker's
operators have answered for it, ``federator-adapter witness reset`` starts again,
keeping the old state aside (:func:`reset`).

State lives in ``witness_path`` (JSON, replaced atomically; an ``flock``'d
``.lock`` file beside it, so gunicorn workers take turns) or, without one, in
memory.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from adapters.checkpoints import BadCheckpoint, Checkpoint, open_checkpoint
from adapters.kit.keys import KeysUnavailable, jwks_session
from adapters.witness import (
    EXTEND,
    FORK,
    HOLD,
    OLDER,
    SAME,
    checked_frontier,
    fork_reason,
    gone_reason,
    judge,
    proof_problem,
    sizes_to_prove,
)

log = logging.getLogger("adapters.kit.witness")

CONSISTENT, INCONSISTENT, NONE = "consistent", "inconsistent", "none"
#: what ``Witness.check`` says when it could not check (not a state that is held)
UNCHECKED = "unchecked"
MAX_TOKEN = 4096
Alert = Callable[[str], None]
KeySource = Callable[[str | None], Any]  # kid -> joserfc KeySet (adapters.kit.keys)


class WitnessStore:
    """``{"status", "checkpoint" (public fields and "frontier"), "problem"}``."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self._memory: dict[str, Any] = {}
        self._lock = threading.Lock()

    def read(self) -> dict[str, Any]:
        if self.path is None:
            with self._lock:
                return json.loads(json.dumps(self._memory))
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError:
            # Never overwrite what may be evidence: keep it aside, then start again.
            aside = self.path.with_name(f"{self.path.name}.unreadable-{int(time.time())}")
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
            log.error("witness state %s is not JSON: kept as %s, starting again",
                      self.path, aside.name)
            return {}
        return data if isinstance(data, dict) else {}

    @contextlib.contextmanager
    def update(self) -> Iterator[dict[str, Any]]:
        """The state to change in place, written back when the block ends well."""
        with self._lock:
            if self.path is None:
                state = json.loads(json.dumps(self._memory))
                yield state
                self._memory = state
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    state = self.read()
                    yield state
                    _write_new(self.path, json.dumps(state, indent=2) + "\n")
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)


def _write_new(path: Path, text: str) -> None:
    """Replace ``path`` by a new file: mkstemp's (O_EXCL, unguessable name, mode
    0600), so nothing planted beside it (a symlink) is written through (issue 22)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def reset(store: WitnessStore, reason: str, *, now: float | None = None) -> Path | None:
    """Start witnessing again (after the broker's operators have answered for an
    inconsistency, or the broker's trail was legitimately started anew): the held
    state is kept aside, untouched, as ``<file>.reset-<time>`` (the evidence), and
    the new state holds no checkpoint, only when and why it was reset and where the
    old one went. The next checkpoint offered is then held as the first. Returns
    where the old state went (None when nothing was held)."""
    if store.path is None:
        raise ValueError("the state is in the running kit's memory (no witness_path)")
    stamp = int(now if now is not None else time.time())
    with store.update() as state:
        if not state:
            return None
        aside = store.path.with_name(f"{store.path.name}.reset-{stamp}")
        aside.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        held = state.get("checkpoint") if isinstance(state.get("checkpoint"), dict) else {}
        status = state.get("status") or (CONSISTENT if held else NONE)
        state.clear()
        state["reset"] = {"at": datetime.fromtimestamp(stamp, UTC).isoformat(),
                          "reason": reason, "previous": aside.name, "previous_status": status,
                          "previous_tree_size": held.get("tree_size")}
    log.warning("witness: reset (%s); the previous state is kept as %s", reason, aside.name)
    return aside


def held_of(state: dict[str, Any]) -> Checkpoint | None:
    cp = state.get("checkpoint")
    if not isinstance(cp, dict):
        return None
    return Checkpoint(**{k: cp[k] for k in ("log", "tree_size", "root_hash", "head_hash", "at",
                                            "kid", "signed")})


class Witness:
    def __init__(self, store: WitnessStore, keys: KeySource, proof_url: str | None, *,
                 alert: Alert | None = None, session: requests.Session | None = None,
                 timeout_s: float = 5.0) -> None:
        self.store = store
        self.keys = keys
        self.proof_url = proof_url
        self.alert = alert
        # straight to the broker: no proxy from the environment, no redirect followed
        self.session = session or jwks_session()
        self.timeout_s = timeout_s
        self._cv = threading.Condition()
        self._pending: str | None = None
        self._busy = False
        self._thread: threading.Thread | None = None
        self._pid = 0

    # -- the request's side: never blocks, never raises ------------------------------

    def offer(self, token: str | None) -> None:
        if not token or len(token) > MAX_TOKEN:
            return
        with self._cv:
            self._pending = token.strip()
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._pid = os.getpid()  # gunicorn forks workers after building the app
                self._thread = threading.Thread(target=self._run, name="kit-witness",
                                                daemon=True)
                self._thread.start()
            self._cv.notify_all()

    def status(self) -> str:
        state = self.store.read()
        return str(state.get("status") or (CONSISTENT if state.get("checkpoint") else NONE))

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Until the offered checkpoint has been dealt with (tests, shutdown)."""
        with self._cv:
            return self._cv.wait_for(lambda: self._pending is None and not self._busy,
                                     timeout=timeout_s)

    def _run(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._pending is not None)
                token, self._pending, self._busy = self._pending, None, True
            try:
                self.check(token)
            except Exception as e:  # its own thread: say so, and take the next one
                log.error("witness: checking a checkpoint failed: %s", type(e).__name__)
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()

    # -- the check ------------------------------------------------------------------------

    def check(self, token: str) -> str:
        """Deal with one signed checkpoint; the witness's status after it."""
        try:
            incoming = self._open(token)
        except BadCheckpoint as e:
            log.warning("witness: a checkpoint the kit cannot accept: %s", e)
            return UNCHECKED
        for _ in range(3):  # again if another worker held a new one meanwhile
            state = self.store.read()
            if state.get("status") == INCONSISTENT:
                return INCONSISTENT  # the evidence stays as it was
            held = held_of(state)
            step = judge(held, incoming)
            if step == SAME:
                return CONSISTENT
            if step == FORK:
                assert held is not None
                return self._inconsistent(held, incoming, fork_reason(held, incoming))
            answer = self._proof(*sizes_to_prove(held, incoming))
            if answer is None:
                return UNCHECKED  # not reachable now: the next request tries again
            if "gone" in answer and held is None:
                answer = {}  # the first one seen: held on trust, without its frontier
            elif "gone" in answer:
                return self._inconsistent(held, incoming, gone_reason(held, answer["gone"]))
            if held is not None:
                problem = proof_problem(held, incoming, answer)
                if problem:
                    return self._inconsistent(held, incoming, problem)
            if step == OLDER:
                return CONSISTENT
            with self.store.update() as now:
                if now.get("checkpoint") != state.get("checkpoint") \
                        or now.get("status") == INCONSISTENT:
                    continue
                now["status"] = CONSISTENT
                now["checkpoint"] = {**incoming.public(), "frontier": list(
                    checked_frontier(incoming, answer.get("frontier") or []))}
            if step in (HOLD, EXTEND):
                log.info("witness: holding the broker's checkpoint of %d records",
                         incoming.tree_size)
            return CONSISTENT
        return self.status()

    def _open(self, token: str) -> Checkpoint:
        kid = _kid(token)
        try:
            keyset = self.keys(kid)
        except KeysUnavailable as e:
            raise BadCheckpoint("the broker's keys are unavailable") from e
        return open_checkpoint(token, {"keys": [k.as_dict(private=False)
                                                for k in keyset.keys]})

    def _proof(self, first: int, second: int) -> dict[str, Any] | None:
        """The broker's answer; ``{"gone": why}`` when it cannot prove those sizes;
        None when it cannot be asked now."""
        if not self.proof_url:
            log.warning("witness: no proof URL (set witness_proof_url): checkpoints not checked")
            return None
        try:
            response = self.session.get(self.proof_url, params={"first": first, "second": second},
                                        timeout=self.timeout_s, allow_redirects=False,
                                        headers={"Accept": "application/json"})
        except requests.RequestException as e:
            log.warning("witness: the broker's proofs are unreachable: %s", type(e).__name__)
            return None
        if response.status_code == 404:
            return {"gone": f"HTTP 404 for the proof from {first} to {second} records"}
        if response.status_code != 200:
            log.warning("witness: the broker's proof answered HTTP %d", response.status_code)
            return None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            log.warning("witness: the broker's proof is not a JSON object")
            return None
        return answer

    def _inconsistent(self, held: Checkpoint, incoming: Checkpoint, reason: str) -> str:
        with self.store.update() as state:
            if state.get("status") == INCONSISTENT:
                return INCONSISTENT
            state["status"] = INCONSISTENT
            state["problem"] = {"reason": reason,
                                "noticed_at": datetime.now(UTC).isoformat(timespec="seconds"),
                                "offered": incoming.public()}
            state.setdefault("checkpoint", {**held.public(), "frontier": []})
        log.error("witness: INCONSISTENT: %s", reason)
        if self.alert is not None:
            try:
                self.alert(reason)
            except Exception as e:  # the alert is on top of the log, not instead of it
                log.error("witness: the admin could not be told: %s", type(e).__name__)
        return INCONSISTENT


def _kid(token: str) -> str | None:
    try:
        segment = token.split(".")[0]
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, IndexError):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


def make_witness(settings: Any, keys: KeySource) -> Witness:
    """The kit's witness from its settings (``adapters.kit.settings.KitSettings``)."""
    from adapters.kit.govuk_notify import make_sender
    from adapters.kit.notify import Notifier, compose_witness_alert
    from adapters.witness import proof_url_for

    alert: Alert | None = None
    send = make_sender(settings) if settings.admin_email else None
    if send is not None:
        mailer = Notifier(send, mode="immediate", sender=settings.notify_from)
        broker = settings.broker_issuer or settings.jwks_url

        def alert(reason: str) -> None:
            mailer.submit(compose_witness_alert(
                reason, to=settings.admin_email, sender=settings.notify_from,
                authority_name=settings.name, broker=broker))

    return Witness(WitnessStore(settings.witness_path), keys,
                   settings.witness_proof_url or proof_url_for(settings.jwks_url), alert=alert,
                   session=jwks_session(getattr(settings, "ca_file", None)))
