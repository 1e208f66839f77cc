"""``recyclops watch``: halt a canary that serves worse than the stable channel.

The same telemetry as ``promote`` (``promote.gather``), judged the other way round: a
canary is halted when its correction rate or its low-confidence rate is worse than the
target's beyond noise (``rollout.significance``) AND by more than ``rollout.halt_margin``,
each rate judged only once both sides have ``halt_min_presses`` / ``halt_min_frames``.
Halting is ``publish.rollback`` to the version the canary served before: a new, higher
generation whose note says why, so the console and the history show the reason.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from ..shared.config import MqttConfig, RolloutConfig
from ..shared.manifest import ModelRef
from ..shared.rollout.actions import previous_version
from ..shared.store import ObjectStore
from .channels import latest
from .promote import Check, RolloutError, Tally, checks, gather, window

logger = logging.getLogger(__name__)

Verdict = Literal["healthy", "waiting", "idle", "halted"]
HALT_PREFIX = "automatic halt"


@dataclass
class WatchResult:
    """``healthy``: judged and not worse; ``waiting``: not enough telemetry to judge;
    ``idle``: nothing to compare (no model, or both channels serve one version);
    ``halted``: rolled back (``pointer`` is the new generation)."""

    verdict: Verdict
    lines: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    pointer: ModelRef | None = None


def degraded(check: Check, margin: float) -> bool:
    """Worse beyond noise and by more than the margin: the bound a canary must not cross."""
    return check.worse and check.excess > margin


def _judged(canary: Tally, target: Tally, config: RolloutConfig) -> tuple[list[Check], list[str]]:
    """The checks with enough counts on both sides, and what the others still lack."""
    judged, lacking = [], []
    for check in checks(canary, target, config.significance):
        need = (
            config.halt_min_presses if check.metric == "correction rate" else config.halt_min_frames
        )
        unit = "predicted presses" if check.metric == "correction rate" else "frames"
        have = min(check.rates.n, check.rates.ref_n)
        if have >= need:
            judged.append(check)
        else:
            lacking.append(f"{check.metric}: {have:,} of {need:,} {unit} on the smaller side")
    return judged, lacking


def watch_once(
    store: ObjectStore,
    config: RolloutConfig,
    *,
    canary: str | None = None,
    against: str | None = None,
    mqtt_config: MqttConfig | None = None,
    now: datetime | None = None,
) -> WatchResult:
    """One look at the canary; rolls it back when it has degraded beyond the bound."""
    from .publish import rollback

    canary = canary or config.canary
    against = against or config.target
    c, t = latest(store, canary), latest(store, against)
    if c is None or t is None:
        missing = canary if c is None else against
        return WatchResult("idle", [f"channel {missing!r} serves nothing"])
    if c.version == t.version:
        return WatchResult("idle", [f"{canary} and {against} both serve {c.version}"])
    telemetry = gather(store, *window(c, config.since_days, now))
    ct, tt = telemetry.of(c.version), telemetry.of(t.version)
    judged, lacking = _judged(ct, tt, config)
    lines = (
        [
            f"{canary}: {c.version} on {len(ct.bins)} bin(s); {against}: {t.version} on "
            f"{len(tt.bins)} bin(s)"
        ]
        + [ch.describe() for ch in judged]
        + lacking
    )
    bad = [ch for ch in judged if degraded(ch, config.halt_margin)]
    if not bad:
        return WatchResult("healthy" if judged else "waiting", lines)
    reasons = [
        f"{ch.describe()} (+{100 * ch.excess:.1f} points > {100 * config.halt_margin:.1f})"
        for ch in bad
    ]
    back = previous_version(store, canary, c.version)
    if back is None:
        raise RolloutError(
            f"{canary} ({c.version}) has degraded ({'; '.join(reasons)}) but never served "
            "another version to roll back to: publish one or move the canary bins"
        )
    note = f"{HALT_PREFIX} of {c.version} against {against} ({t.version}): " + "; ".join(reasons)
    pointer = rollback(store, canary, back, mqtt_config, note=note[:1000])
    logger.warning("channel %s halted: back to %s: %s", canary, back, "; ".join(reasons))
    return WatchResult("halted", lines, reasons, pointer)
