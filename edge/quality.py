"""The quality figures of one telemetry period, counted as things happen.

``QualityCounter`` is fed by the event log (``EventLog.listen``): every event the frame
loop, the key handler, the capture thread and the updater already emit goes through
``observe``. Figures that parts only keep as running totals (items per class, upload
failures) are given to ``flush`` as totals and turned into the period's share there.
No I/O and no clock of its own: the reporter (``qualityreport.py``) says when a period ends.
"""

import math
import threading
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..shared.messages import HISTOGRAM_BINS, DeviceQuality
from ..shared.version import __version__
from .smoothing import UNSURE

#: event → error kind, for events that say something went wrong
ERROR_EVENTS = {
    "model_rejected": "model_rejected",
    "camera_down": "camera_down",
    "camera_gave_up": "camera_gave_up",
    "spool_unwritable": "spool_unwritable",
    "classification_failed": "classification_failed",
}
MAX_VERSIONS = 32


def histogram_bin(score: float) -> int:
    """The bin of a top-1 score: equal bins over [0, 1], 1.0 in the last one."""
    return min(HISTOGRAM_BINS - 1, max(0, int(score * HISTOGRAM_BINS)))


class QualityCounter:
    """Counts for the current period behind one lock (events come from several threads)."""

    def __init__(self, device: str, run: str, threshold: float) -> None:
        self.device = device
        self.run = run
        self.threshold = threshold
        self._lock = threading.Lock()
        self._seen_totals: dict[str, Counter[str]] = {}
        self._reset(None)

    def _reset(self, serving: str | None) -> None:
        self._frames = 0
        self._by_class: Counter[str] = Counter()
        self._histogram = [0] * HISTOGRAM_BINS
        self._nonfinite = 0
        self._low = 0
        self._captures = 0
        self._capture_reasons: Counter[str] = Counter()
        self._presses = 0
        self._agreed = 0
        self._disagreed = 0
        self._unpredicted = 0
        self._undos = 0
        self._errors: Counter[str] = Counter()
        self._versions: list[str] = [serving] if serving else []
        self._serving = serving
        self._shadow_version: str | None = None
        self._shadow_frames = 0
        self._shadow_agreed = 0
        self._shadow_skipped = 0
        self._shadow_low = 0
        self._shadow_histogram = [0] * HISTOGRAM_BINS

    # ---- what happened
    def observe(self, event: str, fields: Mapping[str, Any]) -> None:
        """One event of the daemon's log (its name and fields); others are ignored."""
        if event == "classification":
            self.frame(fields.get("raw_label"), fields.get("raw_score"))
        elif event == "gathered":
            self.press(fields.get("label"), fields.get("prediction"))
        elif event == "auto_captured":
            self.capture(fields.get("reasons") or [])
        elif event == "undo":
            self.undo()
        elif event == "model":
            self.model(fields.get("version"))
        elif event == "gather_refused":
            self.error(f"refused_{fields.get('reason') or 'unknown'}")
        elif event in ERROR_EVENTS:
            self.error(ERROR_EVENTS[event])

    def frame(self, label: str | None, score: float | None) -> None:
        """One classified frame: its raw top-1 label and score."""
        with self._lock:
            self._frames += 1
            if label is not None:
                self._by_class[label] += 1
            if score is None or not math.isfinite(score):
                self._nonfinite += 1  # a NaN answer is not "low confidence", it is broken
                return
            self._histogram[histogram_bin(score)] += 1
            if score < self.threshold:
                self._low += 1

    def press(self, label: str | None, prediction: str | None) -> None:
        """An operator's kept press: agreed with the model's answer at that moment, or
        corrected it; a press while there was no answer (no model, "unsure") is neither."""
        with self._lock:
            self._presses += 1
            if prediction is None or prediction == UNSURE:
                self._unpredicted += 1
            elif prediction == label:
                self._agreed += 1
            else:
                self._disagreed += 1

    def capture(self, reasons: list[str]) -> None:
        with self._lock:
            self._captures += 1
            self._capture_reasons.update(reasons)

    def undo(self) -> None:
        with self._lock:
            self._undos += 1

    def error(self, kind: str, count: int = 1) -> None:
        with self._lock:
            self._errors[kind] += count

    def model(self, version: str | None) -> None:
        with self._lock:
            self._serving = version
            if version and version not in self._versions and len(self._versions) < MAX_VERSIONS:
                self._versions.append(version)

    def shadow_frame(self, version: str, agreed: bool, score: float) -> None:
        """The shadow worker ran the candidate ``version`` on a frame: the same top-1 as the
        serving model or not, and the candidate's top-1 score."""
        with self._lock:
            self._shadow_version = version
            self._shadow_frames += 1
            self._shadow_agreed += agreed
            if math.isfinite(score):
                self._shadow_histogram[histogram_bin(score)] += 1
                self._shadow_low += score < self.threshold

    def shadow_skipped(self) -> None:
        """A sampled frame the candidate did not see (CPU budget spent, queue full)."""
        with self._lock:
            self._shadow_skipped += 1

    # ---- the period's end
    def _delta(self, name: str, totals: Mapping[str, int]) -> Counter[str]:
        """This period's share of a running total (a total that went down restarts)."""
        before = self._seen_totals.get(name, Counter())
        now = Counter({k: v for k, v in totals.items() if v})
        self._seen_totals[name] = now
        return Counter({k: v - before.get(k, 0) for k, v in now.items() if v > before.get(k, 0)})

    def baseline(self, items: Mapping[str, int], errors: Mapping[str, int]) -> None:
        """The running totals at the start of the first period (counted before it)."""
        with self._lock:
            self._delta("items", items)
            self._delta("errors", errors)

    def flush(
        self,
        start: datetime,
        end: datetime,
        seconds: float,
        *,
        items: Mapping[str, int],
        errors: Mapping[str, int],
        model_generation: int | None,
        uptime: float,
        spool_depth: int,
        dropped: int = 0,
    ) -> DeviceQuality:
        """The period's record, and a fresh period begins. ``items`` and ``errors`` are
        running totals (items per class, faults counted elsewhere, e.g. upload failures)."""
        with self._lock:
            errors_now = self._errors + self._delta("errors", errors)
            predicted = self._agreed + self._disagreed
            report = DeviceQuality(
                device=self.device,
                run=self.run,
                software_version=__version__,
                period_start=start,
                period_end=end,
                period_seconds=round(max(0.0, seconds), 3),
                uptime_seconds=round(max(0.0, uptime), 3),
                model_version=self._serving,
                model_generation=model_generation,
                model_versions=list(self._versions),
                frames=self._frames,
                frames_by_class=dict(self._by_class),
                items=dict(self._delta("items", items)),
                top1_histogram=list(self._histogram),
                nonfinite=self._nonfinite,
                low_confidence=self._low,
                low_confidence_threshold=self.threshold,
                low_confidence_rate=round(self._low / self._frames, 6) if self._frames else None,
                captures=self._captures,
                capture_reasons=dict(self._capture_reasons),
                presses=self._presses,
                presses_agreed=self._agreed,
                presses_disagreed=self._disagreed,
                presses_unpredicted=self._unpredicted,
                correction_rate=round(self._disagreed / predicted, 6) if predicted else None,
                undos=self._undos,
                errors=dict(errors_now),
                spool_depth=spool_depth,
                records_dropped=dropped,
                shadow_version=self._shadow_version,
                shadow_frames=self._shadow_frames,
                shadow_agreed=self._shadow_agreed,
                shadow_skipped=self._shadow_skipped,
                shadow_low_confidence=self._shadow_low,
                shadow_top1_histogram=list(self._shadow_histogram),
            )
            self._reset(self._serving)
        return report
