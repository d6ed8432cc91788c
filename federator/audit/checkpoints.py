"""Signed checkpoints of the trail: defined in :mod:`adapters.checkpoints` (the
adapter kit checks them too, and ``adapters`` never imports ``federator``)."""

from adapters.checkpoints import (
    TYPE,
    WINDOW_LEEWAY_S,
    BadCheckpoint,
    Checkpoint,
    open_checkpoint,
    read_checkpoint,
    sign_checkpoint,
    window_problem,
)

__all__ = ["TYPE", "WINDOW_LEEWAY_S", "BadCheckpoint", "Checkpoint", "open_checkpoint",
           "read_checkpoint", "sign_checkpoint", "window_problem"]
