"""Bins' quality telemetry in the store: one object per bin and period, written once.

A record goes to ``telemetry/<device>/<day>/<start>-<run>.json`` with "only if absent": a
retried upload (after a timeout, a crash, a restart) finds its own record there and stops,
so a period is never counted twice; ``run`` names the daemon process, so two processes of
one bin never share a key even when a clock jumps back. Counts in a record are the
period's own, so a day is the sum of its records (``summarise``). Shared so that the edge
writes and the console and the cloud read with the same code.
"""

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from pydantic import ValidationError

from . import layout
from .errors import ObjectNotFoundError
from .messages import HISTOGRAM_BINS, DeviceQuality
from .store import ObjectStore

logger = logging.getLogger(__name__)


def quality_key(report: DeviceQuality) -> str:
    return layout.telemetry_key(report.device, report.period_start, report.run)


def store_quality(store: ObjectStore, report: DeviceQuality) -> str:
    """Write one period's record (put-if-absent: a retry is a no-op); returns its key."""
    key = quality_key(report)
    if not store.put(key, report.model_dump_json().encode("utf-8"), if_absent=True):
        logger.debug("telemetry %s was already in the store (a retried upload)", key)
    return key


def load_quality(
    store: ObjectStore, device: str, first: date, last: date | None = None
) -> list[DeviceQuality]:
    """A bin's records for the UTC days ``first`` to ``last`` (inclusive; default: that one
    day), in period order. A record that does not parse is logged and skipped."""
    last = last or first
    reports: list[DeviceQuality] = []
    day = first
    while day <= last:
        for key in sorted(store.list(layout.telemetry_day_prefix(device, day))):
            if layout.parse_telemetry_key(key) is None:
                continue
            try:
                reports.append(DeviceQuality.model_validate_json(store.get(key)))
            except ObjectNotFoundError:
                continue
            except ValidationError as exc:
                logger.warning("telemetry %s does not parse, skipped: %s", key, exc)
        day += timedelta(days=1)
    return sorted(reports, key=lambda r: (r.period_start, r.run))


@dataclass
class QualitySummary:
    """The sum of some periods (a bin's day, a week): counts added, rates recomputed,
    gauges (spool depth, uptime, model) from the last period."""

    periods: int = 0
    seconds: float = 0.0
    first_start: datetime | None = None
    last_end: datetime | None = None
    frames: int = 0
    frames_by_class: Counter[str] = field(default_factory=Counter)
    items: Counter[str] = field(default_factory=Counter)
    top1_histogram: list[int] = field(default_factory=lambda: [0] * HISTOGRAM_BINS)
    nonfinite: int = 0
    low_confidence: int = 0
    captures: int = 0
    capture_reasons: Counter[str] = field(default_factory=Counter)
    presses: int = 0
    presses_agreed: int = 0
    presses_disagreed: int = 0
    presses_unpredicted: int = 0
    undos: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    model_versions: list[str] = field(default_factory=list)
    model_version: str | None = None
    model_generation: int | None = None
    spool_depth: int = 0
    uptime_seconds: float = 0.0
    runs: list[str] = field(default_factory=list)
    shadow_version: str | None = None  # the last candidate shadowed
    shadow_frames: int = 0
    shadow_agreed: int = 0
    shadow_skipped: int = 0
    shadow_low_confidence: int = 0

    @property
    def shadow_agreement(self) -> float | None:
        return self.shadow_agreed / self.shadow_frames if self.shadow_frames else None

    @property
    def low_confidence_rate(self) -> float | None:
        return self.low_confidence / self.frames if self.frames else None

    @property
    def correction_rate(self) -> float | None:
        predicted = self.presses_agreed + self.presses_disagreed
        return self.presses_disagreed / predicted if predicted else None


def summarise(reports: Iterable[DeviceQuality]) -> QualitySummary:
    """Add up periods (in period order, as ``load_quality`` returns them)."""
    total = QualitySummary()
    for r in reports:
        total.periods += 1
        total.seconds += r.period_seconds
        total.first_start = total.first_start or r.period_start
        total.last_end = r.period_end
        total.frames += r.frames
        total.frames_by_class.update(r.frames_by_class)
        total.items.update(r.items)
        total.top1_histogram = [
            a + b for a, b in zip(total.top1_histogram, r.top1_histogram, strict=True)
        ]
        total.nonfinite += r.nonfinite
        total.low_confidence += r.low_confidence
        total.captures += r.captures
        total.capture_reasons.update(r.capture_reasons)
        total.presses += r.presses
        total.presses_agreed += r.presses_agreed
        total.presses_disagreed += r.presses_disagreed
        total.presses_unpredicted += r.presses_unpredicted
        total.undos += r.undos
        total.errors.update(r.errors)
        total.model_versions += [v for v in r.model_versions if v not in total.model_versions]
        total.model_version, total.model_generation = r.model_version, r.model_generation
        total.spool_depth, total.uptime_seconds = r.spool_depth, r.uptime_seconds
        if r.run not in total.runs:
            total.runs.append(r.run)
        total.shadow_version = r.shadow_version or total.shadow_version
        total.shadow_frames += r.shadow_frames
        total.shadow_agreed += r.shadow_agreed
        total.shadow_skipped += r.shadow_skipped
        total.shadow_low_confidence += r.shadow_low_confidence
    return total
