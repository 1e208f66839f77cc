"""Accuracy, per class and as a confusion matrix (the blessing itself is ``blessing.py``)."""

from dataclasses import dataclass

import numpy as np

from ..shared.errors import RecyclopsError


class GateError(RecyclopsError):
    """The run was not blessed (or never judged); it must not be published."""


@dataclass
class Scores:
    accuracy: float
    per_class: dict[str, float | None]
    support: dict[str, int]
    confusion: list[list[int]]  # rows: true class, columns: predicted

    @classmethod
    def of(cls, probs: np.ndarray, y: np.ndarray, categories: list[str]) -> "Scores":
        n = len(categories)
        pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, int)
        conf = np.zeros((n, n), int)
        for t, p in zip(y, pred, strict=True):
            conf[int(t), int(p)] += 1
        support = conf.sum(axis=1)
        per = {
            c: (float(conf[i, i] / support[i]) if support[i] else None)
            for i, c in enumerate(categories)
        }
        acc = float(np.trace(conf) / max(1, conf.sum()))
        return cls(
            acc, per, {c: int(s) for c, s in zip(categories, support, strict=True)}, conf.tolist()
        )
