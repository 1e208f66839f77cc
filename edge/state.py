"""What the daemon is doing, in one place: the status file, the live view and the stats read it.

The status file (``<state_dir>/status.json``, atomically replaced about once a second) is
the parseable view for scripts and the demo.
"""

import os
import threading
import time
from collections import Counter, deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..shared.mqtt import dumps_json

STATUS_FILE = "status.json"


def rss_mb() -> float | None:
    """Resident memory of this process (Linux), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class EdgeState:
    """The daemon's counters and last events, behind one lock that never leaves this class:
    every writer calls a method, every reader gets a consistent copy."""

    def __init__(self, device: str, keep: int = 20) -> None:
        self._lock = threading.Lock()
        self.device = device
        self.started = time.time()
        self._state = "starting"
        self._model_version: str | None = None
        self._model_backend: str | None = None
        self._frames = 0
        self._frames_classified = 0
        self._counts: Counter[str] = Counter()
        self._items: Counter[str] = Counter()
        self._last_predictions: deque[dict[str, Any]] = deque(maxlen=keep)
        self._current: dict[str, Any] | None = None
        self._gathered = 0
        self._undone = 0
        self._refused = 0
        self._refusals: Counter[str] = Counter()  # why: spool_full, spool_unwritable, stale_frame…
        self._last_refusal: dict[str, Any] | None = None
        self._last_gather: dict[str, Any] | None = None
        self._flash_until = 0.0
        self._spool_full = False
        self._camera_ended = False
        self._model_switches: list[dict[str, Any]] = []
        self._last_update_error: str | None = None
        self._infer_ms: deque[float] = deque(maxlen=100)
        self._path_ms: deque[float] = deque(maxlen=100)
        self._frame_times: deque[float] = deque(maxlen=50)

    # ---- readers
    @property
    def model_version(self) -> str | None:
        with self._lock:
            return self._model_version

    @property
    def frames(self) -> int:
        with self._lock:
            return self._frames

    @property
    def last_update_error(self) -> str | None:
        with self._lock:
            return self._last_update_error

    @property
    def camera_ended(self) -> bool:
        with self._lock:
            return self._camera_ended

    def gather_context(self) -> tuple[str | None, float | None, str | None]:
        """(smoothed label, its score, model version) at this moment, for a gathered record."""
        with self._lock:
            current = self._current
            label = current.get("label") if current else None
            score = current.get("score") if current else None
            return label, score, self._model_version

    def overlay(self, spool_problem: str | None) -> tuple[dict[str, Any] | None, bool, str | None]:
        """(current prediction, flash on, note) for the live view and the preview."""
        with self._lock:
            note = "SPOOL FULL" if self._spool_full else None
            if spool_problem:
                note = "SPOOL NOT WRITABLE"
            if self._model_version is None:
                note = note or "no model yet"
            return self._current, time.monotonic() < self._flash_until, note

    # ---- writers: the frame loop
    def set_state(self, state: str) -> None:
        """``starting``, ``running`` or ``stopped``."""
        with self._lock:
            self._state = state

    def frame(self) -> int:
        """One frame arrived; the number of frames so far."""
        with self._lock:
            self._frames += 1
            self._frame_times.append(time.monotonic())
            return self._frames

    def classified(self, record: dict[str, Any], inference_ms: float, path_ms: float) -> None:
        with self._lock:
            self._frames_classified += 1
            self._counts[record["label"]] += 1
            self._current = record
            self._last_predictions.append(record)
            self._infer_ms.append(inference_ms)
            self._path_ms.append(path_ms)

    def item(self, label: str) -> None:
        """The item gate counted one item."""
        with self._lock:
            self._items[label] += 1

    def camera_end(self) -> None:
        with self._lock:
            self._camera_ended = True

    def switched(self, version: str | None, backend: str | None, via: str) -> None:
        with self._lock:
            self._model_version, self._model_backend = version, backend
            self._model_switches.append(
                {"version": version, "via": via, "time": datetime.now(UTC).isoformat()}
            )

    def update_failed(self, error: str) -> None:
        with self._lock:
            self._last_update_error = error

    # ---- writers: key presses
    def refusal(self, label: str | None, reason: str, detail: str) -> None:
        with self._lock:
            self._refused += 1
            self._refusals[reason] += 1
            self._last_refusal = {"label": label, "reason": reason, "detail": detail}
            if reason == "spool_full":
                self._spool_full = True

    def undone(self) -> None:
        with self._lock:
            self._undone += 1

    def gathered(self, last_gather: dict[str, Any], flash_seconds: float) -> None:
        with self._lock:
            self._gathered += 1
            self._spool_full = False
            self._flash_until = time.monotonic() + flash_seconds
            self._last_gather = last_gather

    # ---- the status
    def fps(self) -> float:
        with self._lock:
            times = list(self._frame_times)
        if len(times) < 2 or time.monotonic() - times[-1] > 5:
            return 0.0
        return (len(times) - 1) / max(1e-6, times[-1] - times[0])

    @staticmethod
    def _mean(values: deque[float]) -> float:
        return sum(values) / len(values) if values else 0.0

    def inference_ms(self) -> float:
        with self._lock:
            return self._mean(self._infer_ms)

    def snapshot(self, **extra: Any) -> dict[str, Any]:
        fps = self.fps()
        with self._lock:
            return {
                "device": self.device,
                "pid": os.getpid(),
                "state": self._state,
                "started_at": datetime.fromtimestamp(self.started, UTC).isoformat(),
                "updated_at": datetime.now(UTC).isoformat(),
                "model_version": self._model_version,
                "model_backend": self._model_backend,
                "frames": self._frames,
                "frames_classified": self._frames_classified,
                "fps": round(fps, 2),
                "inference_ms": round(self._mean(self._infer_ms), 3),
                "path_ms": round(self._mean(self._path_ms), 3),
                "counts": dict(self._counts),
                "items": dict(self._items),
                "current": self._current,
                "last_predictions": list(self._last_predictions),
                "gathered": self._gathered,
                "undone": self._undone,
                "refused": self._refused,
                "refusals": dict(self._refusals),
                "last_refusal": self._last_refusal,
                "last_gather": self._last_gather,
                "spool_full": self._spool_full,
                "model_switches": list(self._model_switches),
                "last_update_error": self._last_update_error,
                "rss_mb": rss_mb(),
                "camera_ended": self._camera_ended,
                **extra,
            }


def write_status(folder: str | Path, snapshot: dict[str, Any]) -> Path:
    """Temporary name then ``os.replace``: readers never see half a file. No fsync: the file
    is rewritten every second and losing it to a power cut costs nothing (SD cards wear)."""
    path = Path(folder) / STATUS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{STATUS_FILE}.{os.getpid()}.tmp")
    tmp.write_text(dumps_json(snapshot, indent=1))  # no bare NaN, ever
    os.replace(tmp, path)
    return path
