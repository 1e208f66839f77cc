"""Smoothing over the last frames, the "unsure" threshold, and the once-per-item gate."""

from collections import deque
from dataclasses import dataclass

import numpy as np

UNSURE = "unsure"


@dataclass(frozen=True)
class Smoothed:
    label: str  # a category or "unsure"
    score: float
    frames: int


class Smoother:
    """``mean``: average the probabilities; ``vote``: majority of per-frame labels."""

    def __init__(
        self, categories: list[str], method: str = "mean", window: int = 5, threshold: float = 0.5
    ) -> None:
        self.categories = list(categories)
        self.method = method
        self.threshold = threshold
        self._probs: deque[np.ndarray] = deque(maxlen=1 if method == "none" else window)

    def reset(self, categories: list[str] | None = None) -> None:
        if categories is not None:
            self.categories = list(categories)
        self._probs.clear()

    def add(self, probs: np.ndarray) -> Smoothed:
        if probs.shape != (len(self.categories),):
            self.reset()
            raise ValueError(f"expected {len(self.categories)} probabilities, got {probs.shape}")
        self._probs.append(probs)
        if self.method == "vote":
            votes = np.bincount(
                [int(np.argmax(p)) for p in self._probs], minlength=len(self.categories)
            )
            best = int(np.argmax(votes))
            score = float(votes[best]) / len(self._probs)
        else:
            mean = np.mean(self._probs, axis=0)
            best = int(np.argmax(mean))
            score = float(mean[best])
        label = self.categories[best] if score >= self.threshold else UNSURE
        return Smoothed(label, score, len(self._probs))


class ItemGate:
    """Fire once per item: a label must hold ``stable`` frames, and the sorter re-arms only
    when the background category is seen (or, without one, when the scene changes)."""

    def __init__(
        self, stable: int = 3, background: str | None = None, scene_change: float = 12.0
    ) -> None:
        self.stable = stable
        self.background = background
        self.scene_change = scene_change
        self._run_label: str | None = None
        self._run = 0
        self._armed = True
        self._fired_thumb: np.ndarray | None = None

    @staticmethod
    def _thumb(frame: np.ndarray) -> np.ndarray:
        step_y = max(1, frame.shape[0] // 24)
        step_x = max(1, frame.shape[1] // 32)
        return frame[::step_y, ::step_x].astype(np.int16)

    def update(self, label: str, frame: np.ndarray | None = None) -> str | None:
        """The label to act on now, or None."""
        if label == self._run_label:
            self._run += 1
        else:
            self._run_label, self._run = label, 1
        if label == self.background:
            if self._run >= self.stable:
                self._armed = True
            return None
        if (
            not self._armed
            and self.background is None
            and frame is not None
            and self._fired_thumb is not None
        ):
            thumb = self._thumb(frame)
            if (
                thumb.shape == self._fired_thumb.shape
                and float(np.abs(thumb - self._fired_thumb).mean()) >= self.scene_change
            ):
                self._armed = True
        if label == UNSURE or not self._armed or self._run < self.stable:
            return None
        self._armed = False
        self._fired_thumb = self._thumb(frame) if frame is not None else None
        return label
