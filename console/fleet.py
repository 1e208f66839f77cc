"""What the fleet page shows, from the bins' quality telemetry in the store.

Per bin (every folder under ``telemetry/``): online or not, last seen, model and channel,
correction and low-confidence rates over the last 24 h with a 7-day trend, a drift alarm,
and, when the bin shadows a candidate model, its agreement over the last 24 h. The figures
are pure functions of the records and ``now`` (``fleet_view``); reading the store is
``fleetread``'s, for the days of ``window_days`` only.

Rules (``FleetRules``, shown on the page):

- **online**: the bin's last period ended at most ``online_periods`` (3) periods before now;
  a period is the longest of its last 10 records (the first and last period of a run are
  short), at least 60 s. Records reach the store through the bin's spool, so a bin that
  cannot reach the store looks offline too — which is what the fleet needs to know.
- **drift**: the recent window (the last 24 h) against the bin's own baseline (the 7 days
  before it), for the class mix (``items`` per class) and the top-1 confidence histogram
  (frames per score bin). The distance is the total variation, half the sum of the absolute
  differences of the two shares (0: the same mix, 1: nothing in common). It fires when the
  distance is at least ``drift_bound`` (0.25) and both windows have at least the minimum
  count (50 items, 500 frames); with fewer it says so and never fires. With 50 items of a
  handful of classes a stable mix gives a distance of about 0.1 by chance alone.
"""

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from recyclops.shared.messages import HISTOGRAM_BINS, DeviceQuality
from recyclops.shared.quality import summarise

logger = logging.getLogger(__name__)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class FleetRules:
    online_periods: float = 3.0
    min_period_seconds: float = 60.0
    recent_hours: float = 24.0
    baseline_days: int = 7
    trend_days: int = 7
    drift_bound: float = 0.25
    min_items: int = 50
    min_frames: int = 500


def window_days(now: datetime, rules: FleetRules) -> tuple[date, date]:
    """The UTC days whose telemetry the page reads: the baseline's first to today."""
    span = timedelta(hours=rules.recent_hours) + max(rules.baseline_days, rules.trend_days) * DAY
    return (now - span).date(), now.date()


def total_variation(a: Mapping[str, int], b: Mapping[str, int]) -> float:
    """Half the L1 distance between the shares of two count tables (0 when either is empty)."""
    na, nb = sum(a.values()), sum(b.values())
    if not na or not nb:
        return 0.0
    return 0.5 * sum(abs(a.get(k, 0) / na - b.get(k, 0) / nb) for k in set(a) | set(b))


def drift_check(
    what: str,
    unit: str,
    recent: Mapping[str, int],
    baseline: Mapping[str, int],
    *,
    bound: float,
    minimum: int,
) -> dict[str, Any]:
    """One drift test: ``state`` is ``drift``, ``stable`` or ``too_few``, ``text`` says why."""
    nr, nb = sum(recent.values()), sum(baseline.values())
    out: dict[str, Any] = {
        "what": what,
        "recent_count": nr,
        "baseline_count": nb,
        "minimum": minimum,
        "bound": bound,
        "distance": None,
        "largest": None,
        "fired": False,
    }
    if nr < minimum or nb < minimum:
        out["state"] = "too_few"
        out["text"] = (
            f"{what}: not judged, {nr} {unit} in the last 24 h and {nb} in the baseline "
            f"(at least {minimum} each needed)"
        )
        return out
    distance = total_variation(recent, baseline)
    keys = sorted(set(recent) | set(baseline))
    name = max(keys, key=lambda k: (abs(recent.get(k, 0) / nr - baseline.get(k, 0) / nb), k))
    before, after = baseline.get(name, 0) / nb, recent.get(name, 0) / nr
    out.update(
        distance=round(distance, 4), largest={"name": name, "baseline": before, "recent": after}
    )
    out["fired"] = distance >= bound
    out["state"] = "drift" if out["fired"] else "stable"
    change = f"{name} {100 * before:.0f}% → {100 * after:.0f}%" if distance else "none"
    sign = "≥" if out["fired"] else "<"
    verb = "moved" if out["fired"] else "stable"
    out["text"] = (
        f"{what} {verb}: total variation {distance:.2f} {sign} {bound:.2f} "
        f"({nr} {unit} in the last 24 h vs {nb} in the baseline); largest change: {change}"
    )
    return out


def _histogram(reports: Sequence[DeviceQuality]) -> Counter[str]:
    total = summarise(reports).top1_histogram
    width = 1.0 / HISTOGRAM_BINS
    return Counter({f"{i * width:.1f}–{(i + 1) * width:.1f}": n for i, n in enumerate(total)})


def _rates(reports: Sequence[DeviceQuality]) -> dict[str, Any]:
    s = summarise(reports)
    return {
        "periods": s.periods,
        "frames": s.frames,
        "low_confidence": s.low_confidence,
        "low_confidence_rate": s.low_confidence_rate,
        "predicted_presses": s.presses_agreed + s.presses_disagreed,
        "corrections": s.presses_disagreed,
        "correction_rate": s.correction_rate,
        "items": sum(s.items.values()),
    }


def _online_bound(reports: Sequence[DeviceQuality], rules: FleetRules) -> float:
    period = max([r.period_seconds for r in reports[-10:]] + [rules.min_period_seconds])
    return rules.online_periods * period


def bin_view(
    device: str, reports: Sequence[DeviceQuality], now: datetime, rules: FleetRules
) -> dict[str, Any]:
    """One bin's row of the fleet page (``reports`` in period order, as loaded)."""
    recent_start = now - timedelta(hours=rules.recent_hours)
    baseline_start = recent_start - rules.baseline_days * DAY
    recent = [r for r in reports if r.period_end > recent_start]
    baseline = [r for r in reports if baseline_start < r.period_end <= recent_start]
    out: dict[str, Any] = {"device": device, "records": len(reports)}
    if not reports:
        out.update(online=False, last_seen=None, seconds_since=None, online_bound_seconds=None)
        out.update(model_version=None, model_generation=None, channel=None)
        out["software_version"] = None
    else:
        last = max(reports, key=lambda r: (r.period_end, r.period_start))
        since = (now - last.period_end).total_seconds()
        bound = _online_bound(reports, rules)
        out.update(
            online=since <= bound,
            last_seen=last.period_end.astimezone(UTC).isoformat(),
            seconds_since=round(since, 1),
            online_bound_seconds=bound,
            model_version=last.model_version,
            model_generation=last.model_generation,
            channel=last.channel,
            software_version=last.software_version,
        )
    out["last_24h"] = _rates(recent)
    s = summarise(recent)
    out["shadow"] = (
        {
            "version": s.shadow_version,
            "frames": s.shadow_frames,
            "agreed": s.shadow_agreed,
            "agreement": s.shadow_agreement,
            "low_confidence_rate": s.shadow_low_confidence / s.shadow_frames,
            "skipped": s.shadow_skipped,
        }
        if s.shadow_frames
        else None
    )
    trend = []
    for i in range(rules.trend_days, 0, -1):  # oldest first; the last point is the 24 h one
        end = now - (i - 1) * DAY
        rows = [r for r in reports if end - DAY < r.period_end <= end]
        trend.append({"end": end.isoformat(), **_rates(rows)})
    out["trend"] = trend
    mix = drift_check(
        "class mix",
        "items",
        summarise(recent).items,
        summarise(baseline).items,
        bound=rules.drift_bound,
        minimum=rules.min_items,
    )
    confidence = drift_check(
        "top-1 confidence",
        "frames",
        _histogram(recent),
        _histogram(baseline),
        bound=rules.drift_bound,
        minimum=rules.min_frames,
    )
    out["drift"] = [mix, confidence]
    out["alarm"] = mix["fired"] or confidence["fired"]
    return out


def fleet_view(
    records: Mapping[str, Sequence[DeviceQuality]], now: datetime, rules: FleetRules
) -> dict[str, Any]:
    """``GET /api/fleet``: every bin by name, with the rules the figures used."""
    bins = [bin_view(device, records[device], now, rules) for device in sorted(records)]
    return {
        "now": now.isoformat(),
        "rules": asdict(rules),
        "bins": bins,
        "online": sum(b["online"] for b in bins),
        "alarms": sum(b["alarm"] for b in bins),
    }
