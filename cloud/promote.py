"""``recyclops promote``: move a canary's model to the stable channel only on evidence.

The evidence and the move live in ``shared/rollout`` (``evidence``, ``actions``), because
the console's models page promotes too; these are the cloud's names for them.
"""

from ..shared.rollout.actions import promote
from ..shared.rollout.evidence import (
    Check,
    Evidence,
    RolloutError,
    ShadowTally,
    Tally,
    Telemetry,
    checks,
    gather,
    judge,
    window,
)

__all__ = [
    "Check",
    "Evidence",
    "RolloutError",
    "ShadowTally",
    "Tally",
    "Telemetry",
    "checks",
    "gather",
    "judge",
    "promote",
    "window",
]
