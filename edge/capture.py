"""Automatic capture: frames the model is unsure about are kept without a key press.

They are what the next model most needs to learn, and only a bin sees them. The frame loop
calls ``Capturer.observe`` with each frame's probabilities; the decision is a few numpy
operations, and everything slow (JPEG encoding, fsync) happens on the capture thread behind a
queue of one: when that thread is busy the frame is dropped, never waited for.

A frame is uncertain when its top-1 probability is low, its top-1/top-2 margin small, or
the smoothing window disagrees with itself. It is captured only when the item it shows has
not been captured yet (one capture per item: the scene must change first), the token bucket
has a token (``per_hour``, ``burst``) and its predicted class has quota left in the last
hour. Captures go to the spool's own share (``Spool.add_capture``): they can never take the
room a key press needs.
"""

import contextlib
import logging
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..shared.config.edge import CaptureConfig
from ..shared.hashing import sha256_bytes
from ..shared.records import AutoCapture, CaptureReason, GatheredRecord
from .gathering import encode_jpeg
from .spool import Spool, SpoolRefusedError

logger = logging.getLogger(__name__)

HOUR = 3600.0


def uncertainty(
    probs: np.ndarray, window: list[int], config: CaptureConfig, full_window: int
) -> tuple[list[CaptureReason], float, float]:
    """(reasons, top-1, margin) for one frame; no reasons: the model is sure enough."""
    ordered = np.sort(probs)[::-1]
    top1 = float(ordered[0])
    margin = float(ordered[0] - ordered[1]) if len(ordered) > 1 else top1
    reasons: list[CaptureReason] = []
    if not np.isfinite(top1):  # the runtime guard's business, not a capture
        return reasons, 0.0, 0.0
    if top1 < config.min_score:
        reasons.append("low_score")
    if margin < config.min_margin:
        reasons.append("small_margin")
    if full_window > 1 and len(window) >= full_window:
        majority = max(Counter(window).values())
        if majority / len(window) < config.min_agreement:
            reasons.append("window_disagrees")
    return reasons, top1, margin


class TokenBucket:
    """``rate`` tokens per hour, at most ``size`` saved up; starts full."""

    def __init__(self, rate_per_hour: float, size: int, clock: Callable[[], float]) -> None:
        self.rate = rate_per_hour / HOUR
        self.size = float(size)
        self.clock = clock
        self.tokens = float(size)
        self.at = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.size, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def take(self) -> bool:
        self._refill()
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def level(self) -> float:
        self._refill()
        return self.tokens


class ClassQuota:
    """At most ``per_hour`` captures of each predicted class in any sliding hour."""

    def __init__(self, per_hour: int, clock: Callable[[], float]) -> None:
        self.per_hour = per_hour
        self.clock = clock
        self.times: dict[str, deque[float]] = {}

    def allows(self, label: str) -> bool:
        now = self.clock()
        times = self.times.setdefault(label, deque())
        while times and now - times[0] >= HOUR:
            times.popleft()
        return len(times) < self.per_hour

    def use(self, label: str) -> None:
        self.times.setdefault(label, deque()).append(self.clock())


def thumb(frame: np.ndarray) -> np.ndarray:
    """A 24x32-ish grid of pixels: enough to tell one item from the next, cheap."""
    step_y, step_x = max(1, frame.shape[0] // 24), max(1, frame.shape[1] // 32)
    return frame[::step_y, ::step_x].astype(np.int16)


@dataclass(frozen=True)
class Job:
    full: np.ndarray
    record: GatheredRecord
    frame: int
    source: str | None


class Capturer:
    """Decides in the frame loop, writes on its own thread. ``on_captured(record, job)``
    is called on the capture thread after the entry is durable."""

    def __init__(
        self,
        config: CaptureConfig,
        spool: Spool,
        device: str,
        window: int,
        jpeg_quality: int,
        on_captured: Callable[[GatheredRecord, int, str | None], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.spool = spool
        self.device = device
        self.window_size = window
        self.quality = jpeg_quality
        self.on_captured = on_captured
        self.bucket = TokenBucket(config.per_hour, config.burst, clock)
        self.quota = ClassQuota(config.per_class_per_hour, clock)
        self._window: deque[int] = deque(maxlen=window)
        self._captured_thumb: np.ndarray | None = None  # the item last captured
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=1)
        self._lock = threading.Lock()
        self.uncertain = 0
        self.captured = 0
        self.reasons: Counter[str] = Counter()
        self.by_class: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()  # same_item, rate, class_quota, busy, share_full…
        self.last_capture: dict[str, Any] | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if self.config.enabled:
            self.thread = threading.Thread(target=self._run, name="capture", daemon=True)
            self.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self.thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self.thread.join(timeout)

    def reset(self) -> None:
        """A new model: the window's labels were another model's."""
        self._window.clear()

    def _skip(self, why: str) -> None:
        with self._lock:
            self.skipped[why] += 1

    def observe(
        self,
        full: np.ndarray,
        small: np.ndarray,
        probs: np.ndarray,
        categories: list[str],
        model_version: str | None,
        frame: int = 0,
        source: str | None = None,
    ) -> list[CaptureReason]:
        """Called once per classified frame; returns the reasons when a capture was queued."""
        if not self.config.enabled or self.thread is None:
            return []
        if len(probs) == len(categories) and np.all(np.isfinite(probs)):
            self._window.append(int(np.argmax(probs)))
        reasons, top1, margin = uncertainty(
            probs, list(self._window), self.config, self.window_size
        )
        if not reasons:
            return []
        with self._lock:
            self.uncertain += 1
        small_thumb = thumb(small)
        last = self._captured_thumb
        if (
            last is not None
            and last.shape == small_thumb.shape
            and float(np.abs(small_thumb - last).mean()) < self.config.scene_change
        ):
            self._skip("same_item")
            return []
        label = categories[int(np.argmax(probs))]
        if not self.quota.allows(label):
            self._skip("class_quota")
            return []
        with self._lock:
            took = self.bucket.take()
        if not took:
            self._skip("rate")
            return []
        record = GatheredRecord(
            sha256="0" * 64,  # set on the capture thread, from the JPEG it encodes
            label=label,
            device=self.device,
            captured_at=datetime.now(UTC),
            model_version=model_version,
            prediction=label,
            score=min(1.0, max(0.0, top1)),
            width=int(full.shape[1]),
            height=int(full.shape[0]),
            capture=AutoCapture(
                reasons=reasons,
                scores={c: round(float(p), 4) for c, p in zip(categories, probs, strict=True)},
                top1=round(min(1.0, max(0.0, top1)), 4),
                margin=round(min(1.0, max(0.0, margin)), 4),
                window=[categories[i] for i in self._window if i < len(categories)],
            ),
        )
        try:
            self._queue.put_nowait(Job(full.copy(), record, frame, source))
        except queue.Full:
            with self._lock:
                self.bucket.tokens += 1.0  # not spent: the frame was never captured
            self._skip("busy")
            return []
        self.quota.use(label)
        self._captured_thumb = small_thumb
        return reasons

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                self._write(job)
            except Exception:
                logger.exception("automatic capture failed")
                self._skip("error")

    def _write(self, job: Job) -> None:
        jpeg = encode_jpeg(job.full, self.quality)
        record = job.record.model_copy(update={"sha256": sha256_bytes(jpeg)})
        record = GatheredRecord.model_validate(record.model_dump())
        try:
            self.spool.add_capture(jpeg, record)
        except SpoolRefusedError as exc:
            self._skip("share_full" if exc.reason == "spool_full" else exc.reason)
            logger.debug("automatic capture not kept: %s", exc)
            return
        assert record.capture is not None
        with self._lock:
            self.captured += 1
            self.reasons.update(record.capture.reasons)
            self.by_class[record.label] += 1
            self.last_capture = {
                "sha256": record.sha256,
                "prediction": record.label,
                "score": record.score,
                "reasons": list(record.capture.reasons),
                "frame": job.frame,
            }
        logger.info(
            "captured %s automatically (%s %.2f: %s)",
            record.sha256[:12],
            record.label,
            record.score or 0.0,
            ", ".join(record.capture.reasons),
        )
        if self.on_captured is not None:
            self.on_captured(record, job.frame, job.source)

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "enabled": self.config.enabled,
                "uncertain_frames": self.uncertain,
                "captured": self.captured,
                "reasons": dict(self.reasons),
                "by_class": dict(self.by_class),
                "skipped": dict(self.skipped),
                "tokens": round(self.bucket.level(), 2),
                "last_capture": self.last_capture,
            }
