"""A key press labels the current frame: keys → categories, gather into the spool, undo."""

import io
import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from PIL import Image

from ..shared.config import RecyclopsConfig
from ..shared.hashing import sha256_bytes
from ..shared.records import GatheredRecord, GatheredUndo
from .spool import Spool, SpoolFullError, SpoolRefusedError, SpoolUnwritableError

logger = logging.getLogger(__name__)


def key_map(config: RecyclopsConfig) -> dict[str, str]:
    """Key (lower case) → category: each category's key and name, plus keypad extras."""
    mapping: dict[str, str] = {}
    for category in config.categories:
        mapping[category.name.lower()] = category.name
        mapping[category.key.lower()] = category.name
    for key, name in config.edge.keypad.keys.items():
        if name not in config.category_names:
            logger.warning("keypad key %r maps to unknown category %r; ignored", key, name)
            continue
        mapping[key.lower()] = name
    return mapping


def legend(config: RecyclopsConfig) -> list[str]:
    """The key legend shown over the live view."""
    parts = [f"{c.key}:{c.name}" for c in config.categories]
    lines, line = [], ""
    for part in parts:
        if len(line) + len(part) > 48:
            lines.append(line.strip())
            line = ""
        line += part + "  "
    lines.append((line + f"{config.edge.keypad.undo_key}:undo").strip())
    return lines


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb), "RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@dataclass(frozen=True)
class Gathered:
    name: str
    sha256: str
    label: str
    captured_at: datetime


class Gatherer:
    def __init__(self, config: RecyclopsConfig, spool: Spool) -> None:
        self.device = config.edge.device_id
        self.quality = config.edge.spool.jpeg_quality
        self.spool = spool
        self.keys = key_map(config)
        self.undo_key = config.edge.keypad.undo_key.lower()
        self._history: deque[Gathered] = deque(maxlen=100)
        self._lock = threading.Lock()

    def category(self, key: str) -> str | None:
        return self.keys.get(key.strip().lower())

    def gather(
        self,
        frame: np.ndarray,
        label: str,
        prediction: str | None,
        score: float | None,
        model_version: str | None,
    ) -> Gathered:
        """Spool the frame durably; SpoolFullError when the spool is at its bound."""
        jpeg = encode_jpeg(frame, self.quality)
        sha = sha256_bytes(jpeg)
        record = GatheredRecord(
            sha256=sha,
            label=label,
            device=self.device,
            captured_at=datetime.now(UTC),
            model_version=model_version,
            prediction=prediction,
            score=None if score is None else min(1.0, max(0.0, score)),
            width=int(frame.shape[1]),
            height=int(frame.shape[0]),
        )
        with self._lock:
            name = self.spool.add_gather(jpeg, record)
            item = Gathered(name, sha, label, record.captured_at)
            self._history.append(item)
        logger.info(
            "gathered %s as %s (model said %s %.2f)", sha[:12], label, prediction, score or 0
        )
        return item

    def undo(self) -> Gathered | None:
        """Undo the last gather: withdrawn from the spool, or a tombstone if already uploaded.
        SpoolRefusedError (the gather stays the last one) when the spool cannot be written."""
        with self._lock:
            if not self._history:
                return None
            item = self._history[-1]
            if not self.spool.withdraw(item.name):
                self.spool.add_undo(
                    GatheredUndo(
                        sha256=item.sha256,
                        device=self.device,
                        captured_at=item.captured_at,
                        undone_at=datetime.now(UTC),
                    )
                )
            self._history.pop()
        logger.info("undid gather %s (%s)", item.sha256[:12], item.label)
        return item


__all__ = [
    "Gathered",
    "Gatherer",
    "SpoolFullError",
    "SpoolRefusedError",
    "SpoolUnwritableError",
    "key_map",
    "legend",
]
