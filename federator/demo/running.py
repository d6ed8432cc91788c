"""The running demo's run file (``<instance>/demo/running.json``): ``federator demo``
writes where its broker, identity provider and authorities listen, and its process
id; ``federator demo token`` reads it, so a demo on another port is found without
being told (issue 22). A file left by a demo that is no longer running (killed, the
machine restarted) is stale: the reader says so rather than guess."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

RUN_FILE = "running.json"


class NoRunningDemo(Exception):
    """No demo could be found from the run file; the message says why and what to do."""


def write_run_file(directory: Path, info: dict[str, Any], *, pid: int | None = None) -> Path:
    path = Path(directory) / RUN_FILE
    path.write_text(json.dumps({**info, "pid": pid if pid is not None else os.getpid()},
                               indent=2), encoding="utf-8")
    return path


def remove_run_file(directory: Path) -> None:
    (Path(directory) / RUN_FILE).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def read_running(directory: Path) -> dict[str, Any]:
    """The running demo's description, or ``NoRunningDemo`` naming the file and why:
    absent, unreadable, or left by a process that has ended."""
    path = Path(directory) / RUN_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NoRunningDemo(
            f"no running demo found ({path.resolve()} does not exist): start "
            "`federator demo`, or give --port or --idp") from None
    except (OSError, ValueError) as e:
        raise NoRunningDemo(f"cannot read {path.resolve()} ({e}): delete it and start "
                            "`federator demo` again, or give --port or --idp") from None
    if not isinstance(info, dict) or not isinstance(info.get("identity_provider"), str):
        raise NoRunningDemo(f"{path.resolve()} names no identity provider: delete it and "
                            "start `federator demo` again, or give --port or --idp")
    pid = info.get("pid")
    if isinstance(pid, int) and not _alive(pid):
        raise NoRunningDemo(
            f"{path.resolve()} is stale: the demo that wrote it (process {pid}) is not "
            "running. Start `federator demo` again (or delete the file), or give --port "
            "or --idp")
    return info
