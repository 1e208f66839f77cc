"""The runtime guard: a model that passed every check before serving can still break on the
scene in front of the camera. Bad outputs on live frames roll the bin back to its previous
model (through the updater, which alone changes the installed models).

A frame is bad when its output is non-finite (NaN or infinite: a healthy model never gives
that) or flat (every class exactly the same probability: what a dead network, all-zero
logits, gives; a healthy model prefers some class on a real frame). The guard trips after
``frames`` bad frames in a row, once per model; one good frame starts the count again.

A constant output is not counted: a confident int8 model legitimately repeats the same
quantised one-hot answer frame after frame on a static scene, and the guard must never trip
on a healthy model.
"""

import logging
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: max - min below this means no class is preferred
FLAT = 1e-6


def problem(probs: np.ndarray) -> str | None:
    """What is wrong with one frame's output, or None."""
    if not np.all(np.isfinite(probs)):
        return "non-finite"
    if probs.size > 1 and float(np.max(probs) - np.min(probs)) < FLAT:
        return "flat (every class equal)"
    return None


class RuntimeGuard:
    """Counts bad live frames of the serving model; ``observe`` returns the reason once."""

    def __init__(self, frames: int) -> None:
        self.limit = frames  # 0: off
        self.run = 0
        self.kinds: set[str] = set()
        self.tripped = False
        self.trips = 0
        self.last_trip: str | None = None

    def reset(self) -> None:
        """A new model serves: judge it from scratch."""
        self.run = 0
        self.kinds = set()
        self.tripped = False

    def observe(self, probs: np.ndarray, version: str) -> str | None:
        """The reason to withdraw ``version``, the first time the limit is reached."""
        if self.limit <= 0 or self.tripped:
            return None
        kind = problem(probs)
        if kind is None:
            self.run = 0
            self.kinds = set()
            return None
        self.run += 1
        self.kinds.add(kind)
        if self.run < self.limit:
            return None
        self.tripped = True
        self.trips += 1
        self.last_trip = (
            f"runtime guard: {self.run} live frames in a row gave "
            f"{' or '.join(sorted(self.kinds))} outputs with model {version}"
        )
        logger.error("%s; rolling back", self.last_trip)
        return self.last_trip

    def status(self) -> dict[str, Any]:
        return {
            "frames": self.limit,
            "bad_in_a_row": self.run,
            "trips": self.trips,
            "last_trip": self.last_trip,
        }
