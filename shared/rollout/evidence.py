"""The evidence a promotion rests on (``recyclops promote``, the console's promote action).

The evidence is the fleet's own quality telemetry (``shared/quality.py``): over the same
window, the periods of bins that served the canary's version are added up and set against
the periods of bins that served the target channel's version. Periods are grouped by the
version a record says was served, not by the channel a bin follows today, so a bin that
changed channel (or model) mid-window counts for each version exactly where it served it;
a period that served two versions is left out (its counts cannot be split).

The canary must have enough frames and enough operator presses with a prediction on both
sides, and neither its correction rate nor its low-confidence rate may be worse than the
target's beyond noise (``stats.fisher_greater``). Then the target channel's next
generation names the canary's version (``actions.promote``), with the evidence in its note.
"""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ..config import RolloutConfig
from ..errors import RecyclopsError
from ..manifest import ModelRef
from ..store import ObjectStore
from ..telemetry_index import load_telemetry
from .channels import latest
from .stats import Rates

logger = logging.getLogger(__name__)


class RolloutError(RecyclopsError):
    """The channels cannot be compared (one serves nothing, or both serve one version)."""


@dataclass
class Tally:
    """What the bins that served one version reported, added up over the window."""

    version: str
    bins: set[str] = field(default_factory=set)
    periods: int = 0
    frames: int = 0
    low_confidence: int = 0
    agreed: int = 0
    disagreed: int = 0

    @property
    def predicted(self) -> int:
        """Operator presses while the model made a prediction: the correction rate's base."""
        return self.agreed + self.disagreed


@dataclass
class ShadowTally:
    """Bins serving one version that shadowed another: how often the two agreed."""

    frames: int = 0
    agreed: int = 0
    low_confidence: int = 0
    bins: set[str] = field(default_factory=set)

    def describe(self, channel: str) -> str:
        return (
            f"shadow on {channel} bins: agreement {self.agreed / self.frames:.1%} over "
            f"{self.frames:,} frames, candidate low-confidence "
            f"{self.low_confidence / self.frames:.1%}"
        )


@dataclass
class Telemetry:
    """Tallies per served version over a window, and the periods that could not be used."""

    since: datetime
    until: datetime
    by_version: dict[str, Tally]
    mixed_periods: int = 0
    #: (served version, shadowed version) -> what the shadow saw (informational)
    shadow: dict[tuple[str, str], ShadowTally] = field(default_factory=dict)

    def of(self, version: str) -> Tally:
        return self.by_version.get(version) or Tally(version)


def window(
    canary: ModelRef, since_days: int, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """The last ``since_days`` days, but no earlier than the canary's current generation: both
    channels are judged over the same stretch of time, and only since the canary moved."""
    until = now or datetime.now(UTC)
    return max(until - timedelta(days=since_days), canary.published_at), until


def gather(store: ObjectStore, since: datetime, until: datetime, *, workers: int = 16) -> Telemetry:
    """Every bin's periods that started between ``since`` and ``until``, tallied by version.

    A bin writes a record a minute, so a week of a fleet is many small objects: only the
    window's days are listed, closed days come from their roll-ups (``recyclops compact``)
    and the rest is read in parallel (``shared.telemetry_index``)."""
    out = Telemetry(since, until, {})
    loaded = load_telemetry(
        store, since.astimezone(UTC).date(), until.astimezone(UTC).date(), workers=workers
    )
    reports = [r for records in loaded.values() for r in records]
    for report in reports:
        if not since <= report.period_start <= until:
            continue
        served = set(report.model_versions) | (
            {report.model_version} if report.model_version else set()
        )
        if len(served) != 1:
            out.mixed_periods += len(served) > 1  # no model at all is simply not counted
            continue
        version = served.pop()
        tally = out.by_version.setdefault(version, Tally(version))
        tally.bins.add(report.device)
        tally.periods += 1
        tally.frames += report.frames
        tally.low_confidence += report.low_confidence
        tally.agreed += report.presses_agreed
        tally.disagreed += report.presses_disagreed
        if report.shadow_version and report.shadow_frames:
            shadow = out.shadow.setdefault((version, report.shadow_version), ShadowTally())
            shadow.frames += report.shadow_frames
            shadow.agreed += report.shadow_agreed
            shadow.low_confidence += report.shadow_low_confidence
            shadow.bins.add(report.device)
    logger.info(
        "telemetry: %d record(s) read, %s",
        len(reports),
        ", ".join(f"{v}: {t.periods}" for v, t in sorted(out.by_version.items())) or "none usable",
    )
    return out


@dataclass(frozen=True)
class Check:
    """One rate of the canary against the target's: worse beyond noise or not."""

    metric: str
    rates: Rates
    significance: float

    @property
    def worse(self) -> bool:
        return self.rates.p_worse < self.significance

    @property
    def excess(self) -> float:
        """How much higher the canary's rate is (absolute; negative: lower)."""
        return self.rates.rate - self.rates.ref_rate

    def describe(self) -> str:
        r = self.rates
        verdict = "worse" if self.worse else "not worse beyond noise"
        return f"{self.metric} {r.rate:.1%} vs {r.ref_rate:.1%}, {verdict}, p = {r.p_worse:.2g}"


def checks(canary: Tally, target: Tally, significance: float) -> list[Check]:
    """The two rates compared: corrections per predicted press, low-confidence frames."""
    return [
        Check(
            "correction rate",
            Rates(canary.disagreed, canary.predicted, target.disagreed, target.predicted),
            significance,
        ),
        Check(
            "low-confidence rate",
            Rates(canary.low_confidence, canary.frames, target.low_confidence, target.frames),
            significance,
        ),
    ]


@dataclass
class Evidence:
    """Everything a promotion decision rests on, and what is missing for one."""

    canary: ModelRef
    target: ModelRef
    canary_tally: Tally
    target_tally: Tally
    checks: list[Check]
    missing: list[str]
    telemetry: Telemetry

    @property
    def sufficient(self) -> bool:
        return not self.missing

    def lines(self) -> list[str]:
        out = []
        for name, pointer, tally in (
            (self.canary.channel, self.canary, self.canary_tally),
            (self.target.channel, self.target, self.target_tally),
        ):
            out.append(
                f"{name}: {pointer.version} on {len(tally.bins)} bin(s), {tally.frames:,} "
                f"frames, {tally.predicted:,} predicted presses"
            )
        shadow = self.telemetry.shadow.get((self.target.version, self.canary.version))
        if shadow is not None and shadow.frames:  # evidence only: the rule stays the checks
            out.append(shadow.describe(self.target.channel))
        out += [c.describe() for c in self.checks]
        if self.telemetry.mixed_periods:
            out.append(f"{self.telemetry.mixed_periods} period(s) served two versions: left out")
        return out

    def summary(self, by: str | None = None) -> str:
        """The note kept in the channel's history (at most 1,000 characters); ``by``: who
        promoted (the console's operator)."""
        window = f"{self.telemetry.since:%Y-%m-%d %H:%M} to {self.telemetry.until:%Y-%m-%d %H:%M}"
        who = f" by {by}" if by else ""
        head = f"promoted from {self.canary.channel}{who} on {window} UTC: "
        return (head + "; ".join(self.lines()))[:1000]


def _pointers(store: ObjectStore, canary: str, target: str) -> tuple[ModelRef, ModelRef]:
    c, t = latest(store, canary), latest(store, target)
    if c is None:
        raise RolloutError(f"channel {canary!r} serves nothing: publish a model to it first")
    if t is None:
        raise RolloutError(
            f"channel {target!r} serves nothing to compare against: publish its first model "
            "with 'recyclops publish'"
        )
    return c, t


def judge(
    store: ObjectStore,
    config: RolloutConfig,
    *,
    canary: str | None = None,
    target: str | None = None,
    now: datetime | None = None,
) -> Evidence:
    """The evidence for promoting ``canary``'s model to ``target`` (config defaults)."""
    c, t = _pointers(store, canary or config.canary, target or config.target)
    telemetry = gather(store, *window(c, config.since_days, now))
    ct, tt = telemetry.of(c.version), telemetry.of(t.version)
    missing = []
    for pointer, tally in ((c, ct), (t, tt)):
        if tally.frames < config.min_frames:
            missing.append(
                f"{pointer.channel} ({pointer.version}): {tally.frames:,} of "
                f"{config.min_frames:,} frames"
            )
        if tally.predicted < config.min_presses:
            missing.append(
                f"{pointer.channel} ({pointer.version}): {tally.predicted:,} of "
                f"{config.min_presses:,} operator presses with a prediction"
            )
    compared = checks(ct, tt, config.significance)
    if not missing:
        missing += [c.describe() for c in compared if c.worse]
    return Evidence(c, t, ct, tt, compared, missing, telemetry)
