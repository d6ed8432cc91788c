"""The README's first promise: `federator demo` runs, `federator demo token`
gives a token, and a lookup through the running demo answers incompletely
because one authority is down."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import jwt
import pytest
import requests

FEDERATOR = shutil.which("federator", path=str(Path(sys.executable).parent)) or "federator"


def _free_block() -> int:
    """A broker port P with P, P+1 and P+101..P+109 all free."""
    for _ in range(50):
        port = random.randint(20000, 40000)
        wanted = [port, port + 1, *range(port + 101, port + 110)]
        sockets = []
        try:
            for p in wanted:
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free block of ports")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, dict[str, str]]]:
    port = _free_block()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATOR_")}
    env["FEDERATOR_INSTANCE_DIR"] = str(tmp_path_factory.mktemp("instance"))
    process = subprocess.Popen([FEDERATOR, "demo", "--port", str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    banner: list[str] = []
    limit = time.monotonic() + 90
    while time.monotonic() < limit:
        line = process.stdout.readline()
        if not line:
            break
        banner.append(line)
        if "Press Ctrl-C" in line:
            break
    text = "".join(banner)
    if "Press Ctrl-C" not in text:
        process.kill()
        pytest.fail(f"the demo did not start:\n{text}")
    drain = threading.Thread(target=process.stdout.read, daemon=True)  # never block its logs
    drain.start()
    yield port, {"banner": text, "env": json.dumps(env)}
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the demo did not stop on Ctrl-C")
    finally:
        drain.join(timeout=5)
        process.stdout.close()


def test_banner_lists_urls_personas_and_children(demo: tuple[int, dict[str, str]]) -> None:
    port, info = demo
    banner = info["banner"]
    assert f"http://127.0.0.1:{port}" in banner
    assert "practitioner" in banner and "auditor" in banner
    assert banner.count("NHS 999") >= 3
    assert "down" in banner and "slow" in banner


def test_token_then_lookup_is_incomplete_because_one_authority_is_down(
        demo: tuple[int, dict[str, str]]) -> None:
    port, info = demo
    env = json.loads(info["env"])
    token = subprocess.run([FEDERATOR, "demo", "token", "--persona", "practitioner",
                            "--port", str(port)], env=env, capture_output=True, text=True,
                           check=True, timeout=60).stdout.strip()
    children = json.loads(subprocess.run([FEDERATOR, "demo", "children", "--json"], env=env,
                                         capture_output=True, text=True, check=True,
                                         timeout=60).stdout)
    running = json.loads((Path(env["FEDERATOR_INSTANCE_DIR"]) / "demo" / "running.json")
                         .read_text())
    down = {a["id"] for a in running["authorities"] if a["behaviour"] == "down"}
    child = next(c for c in children if down & set(c["known_to"]) and len(c["known_to"]) > 1)
    response = requests.post(
        f"http://127.0.0.1:{port}/api/v1/lookups",
        headers={"Authorization": f"Bearer {token}"},
        json={"child": {"nhs_number": child["nhs_number"], "postcodes": child["postcodes"]},
              "purpose": "Assessment under section 17: finding services already involved",
              "basis": {"type": "consent", "given_by": "parent",
                        "given_on": (date.today() - timedelta(days=1)).isoformat(),
                        "reference": "CASE-123"},
              "include_past": True},
        timeout=30)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["complete"] is False
    outcomes = {a["id"]: a["outcome"] for a in answer["authorities"]}
    assert all(outcomes[a] == "error" for a in down if a in outcomes)
    assert any(o == "match" for o in outcomes.values())
    assert answer["professionals"]


def test_token_finds_the_demo_on_another_port_without_being_told(
        demo: tuple[int, dict[str, str]]) -> None:
    """The demo runs on a random port; `demo token` with no --port finds it from the
    run file the demo wrote, and the token works against that broker (issue 22)."""
    port, info = demo
    env = json.loads(info["env"])
    result = subprocess.run([FEDERATOR, "demo", "token"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), options={"verify_signature": False})
    assert claims["iss"] == f"http://127.0.0.1:{port + 1}"


def test_the_demo_limits_are_roomy_enough_to_try_things(
        demo: tuple[int, dict[str, str]]) -> None:
    """Production's default is 10 lookups a minute per practitioner; the demo lets
    someone trying things make more than that without a 429 (issue 22)."""
    port, info = demo
    env = json.loads(info["env"])
    token = subprocess.run([FEDERATOR, "demo", "token", "--persona", "practitioner-2"],
                           env=env, capture_output=True, text=True, check=True,
                           timeout=60).stdout.strip()
    children = json.loads(subprocess.run([FEDERATOR, "demo", "children", "--json"], env=env,
                                         capture_output=True, text=True, check=True,
                                         timeout=60).stdout)
    child = next(c for c in children if not c["known_to"])  # quick: nobody to wait for
    body = {"child": {"nhs_number": child["nhs_number"], "postcodes": child["postcodes"]},
            "purpose": "Assessment under section 17: finding services already involved",
            "basis": {"type": "consent", "given_by": "parent",
                      "given_on": (date.today() - timedelta(days=1)).isoformat(),
                      "reference": "CASE-124"}}
    statuses = [requests.post(f"http://127.0.0.1:{port}/api/v1/lookups", json=body,
                              headers={"Authorization": f"Bearer {token}"},
                              timeout=30).status_code for _ in range(15)]
    assert statuses == [200] * 15, statuses


def test_the_slow_authority_answers_late_but_within_the_deadline(
        demo: tuple[int, dict[str, str]]) -> None:
    """README's walk-through (issue 22): the slow authority's answer arrives seconds
    after the others, yet inside its time limit, so it is a match, not a timeout."""
    port, info = demo
    env = json.loads(info["env"])
    running = json.loads((Path(env["FEDERATOR_INSTANCE_DIR"]) / "demo" / "running.json")
                         .read_text())
    [slow] = [a["id"] for a in running["authorities"] if a["behaviour"] == "slow"]
    children = json.loads(subprocess.run([FEDERATOR, "demo", "children", "--json"], env=env,
                                         capture_output=True, text=True, check=True,
                                         timeout=60).stdout)
    child = next(c for c in children if slow in c["known_to"] and not c["shielded"])
    token = subprocess.run([FEDERATOR, "demo", "token"], env=env, capture_output=True,
                           text=True, check=True, timeout=60).stdout.strip()
    answer = requests.post(
        f"http://127.0.0.1:{port}/api/v1/lookups", headers={"Authorization": f"Bearer {token}"},
        json={"child": {"nhs_number": child["nhs_number"], "postcodes": child["postcodes"]},
              "purpose": "Assessment under section 17: finding services already involved",
              "basis": {"type": "consent", "given_by": "parent",
                        "given_on": (date.today() - timedelta(days=1)).isoformat(),
                        "reference": "CASE-125"}}, timeout=30).json()
    outcomes = {a["id"]: a for a in answer["authorities"]}
    assert outcomes[slow]["outcome"] == "match", outcomes[slow]
    assert outcomes[slow]["latency_ms"] >= 1500  # late: the demo-er sees it arrive
    others = [a["latency_ms"] for i, a in outcomes.items() if i != slow]
    assert others and max(others) < outcomes[slow]["latency_ms"]
