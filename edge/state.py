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
    def __init__(self, device: str, keep: int = 20) -> None:
        self.lock = threading.Lock()
        self.device = device
        self.started = time.time()
        self.state = "starting"
        self.model_version: str | None = None
        self.model_backend: str | None = None
        self.frames = 0
        self.frames_classified = 0
        self.counts: Counter[str] = Counter()
        self.items: Counter[str] = Counter()
        self.last_predictions: deque[dict[str, Any]] = deque(maxlen=keep)
        self.current: dict[str, Any] | None = None
        self.gathered = 0
        self.undone = 0
        self.refused = 0
        self.refusals: Counter[str] = Counter()  # why: spool_full, spool_unwritable, stale_frame…
        self.last_refusal: dict[str, Any] | None = None
        self.last_gather: dict[str, Any] | None = None
        self.flash_until = 0.0
        self.spool_full = False
        self.model_switches: list[dict[str, Any]] = []
        self.last_update_error: str | None = None
        self._infer_ms: deque[float] = deque(maxlen=100)
        self._path_ms: deque[float] = deque(maxlen=100)
        self._frame_times: deque[float] = deque(maxlen=50)

    def frame(self) -> None:
        with self.lock:
            self.frames += 1
            self._frame_times.append(time.monotonic())

    def classified(self, record: dict[str, Any], inference_ms: float, path_ms: float) -> None:
        with self.lock:
            self.frames_classified += 1
            self.counts[record["label"]] += 1
            self.current = record
            self.last_predictions.append(record)
            self._infer_ms.append(inference_ms)
            self._path_ms.append(path_ms)

    def fps(self) -> float:
        with self.lock:
            times = list(self._frame_times)
        if len(times) < 2 or time.monotonic() - times[-1] > 5:
            return 0.0
        return (len(times) - 1) / max(1e-6, times[-1] - times[0])

    @staticmethod
    def _mean(values: deque[float]) -> float:
        return sum(values) / len(values) if values else 0.0

    def inference_ms(self) -> float:
        with self.lock:
            return self._mean(self._infer_ms)

    def snapshot(self, **extra: Any) -> dict[str, Any]:
        fps = self.fps()
        with self.lock:
            return {
                "device": self.device,
                "pid": os.getpid(),
                "state": self.state,
                "started_at": datetime.fromtimestamp(self.started, UTC).isoformat(),
                "updated_at": datetime.now(UTC).isoformat(),
                "model_version": self.model_version,
                "model_backend": self.model_backend,
                "frames": self.frames,
                "frames_classified": self.frames_classified,
                "fps": round(fps, 2),
                "inference_ms": round(self._mean(self._infer_ms), 3),
                "path_ms": round(self._mean(self._path_ms), 3),
                "counts": dict(self.counts),
                "items": dict(self.items),
                "current": self.current,
                "last_predictions": list(self.last_predictions),
                "gathered": self.gathered,
                "undone": self.undone,
                "refused": self.refused,
                "refusals": dict(self.refusals),
                "last_refusal": self.last_refusal,
                "last_gather": self.last_gather,
                "spool_full": self.spool_full,
                "model_switches": list(self.model_switches),
                "last_update_error": self.last_update_error,
                "rss_mb": rss_mb(),
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
