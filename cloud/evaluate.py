"""Accuracy, per class and as a confusion matrix; and the quality gate on int8 against float."""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..shared.atomic import atomic_write_text
from ..shared.errors import RecyclopsError

GATE_FILE = "gate.json"


class GateError(RecyclopsError):
    """The int8 model lost too much accuracy; the run must not be published."""


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


@dataclass
class GateResult:
    passed: bool
    margin: float
    class_margin: float
    float_accuracy: float
    int8_accuracy: float
    reasons: list[str] = field(default_factory=list)

    def save(self, run_dir: Path) -> None:
        atomic_write_text(run_dir / GATE_FILE, json.dumps(asdict(self), indent=1) + "\n")

    def summary(self) -> str:
        head = (
            f"int8 {self.int8_accuracy:.1%} vs float {self.float_accuracy:.1%} "
            f"(allowed drop {self.margin:g} pt overall, {self.class_margin:g} pt per class)"
        )
        if self.passed:
            return "quality gate passed: " + head
        return "quality gate FAILED: " + head + "\n  " + "\n  ".join(self.reasons)


def quality_gate(
    float_scores: Scores, int8_scores: Scores, margin: float, class_margin: float
) -> GateResult:
    """Refuse when int8 drops more than ``margin`` points overall or ``class_margin`` points
    in any class (classes without test images are not judged)."""
    reasons = []
    drop = (float_scores.accuracy - int8_scores.accuracy) * 100
    if drop > margin + 1e-9:
        reasons.append(f"overall: int8 is {drop:.1f} points below float (limit {margin:g})")
    for name, f_acc in float_scores.per_class.items():
        q_acc = int8_scores.per_class.get(name)
        if f_acc is None or q_acc is None:
            continue
        d = (f_acc - q_acc) * 100
        if d > class_margin + 1e-9:
            reasons.append(
                f"class {name}: int8 {q_acc:.1%} is {d:.1f} points below float "
                f"{f_acc:.1%} (limit {class_margin:g})"
            )
    return GateResult(
        not reasons, margin, class_margin, float_scores.accuracy, int8_scores.accuracy, reasons
    )


def load_gate(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / GATE_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GateError(
            f"{path}: missing; this run was not evaluated (re-run 'recyclops train')"
        ) from None
    except (OSError, ValueError) as exc:
        raise GateError(f"{path}: unreadable: {exc}") from None
    return data
