"""The ``federator-lookup/1`` client signs each request, and reads the checkpoint
it carries, on the caller's thread: the fan-out's event loop only sends and reads."""

from __future__ import annotations

import threading

from adapters.base import Target
from adapters.lookup_v1 import LookupV1Client


def test_alookup_signs_and_reads_the_checkpoint_before_the_loop_runs_it() -> None:
    seen: list[str] = []

    def sign(body: bytes, audience: str) -> str:
        seen.append(f"sign:{threading.current_thread().name}")
        return "token"

    def checkpoint() -> str:
        seen.append(f"checkpoint:{threading.current_thread().name}")
        return "cp"

    client = LookupV1Client(sign=sign, checkpoint=checkpoint)
    call = client.alookup(Target(id="a", url="http://127.0.0.1:9", timeout_ms=100),
                          {"lookup_id": "L1"}, deadline=0.0)
    try:
        here = threading.current_thread().name
        assert seen == [f"sign:{here}", f"checkpoint:{here}"]  # before anything awaits
    finally:
        call.close()  # never run: nothing is sent
