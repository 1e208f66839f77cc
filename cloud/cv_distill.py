"""Distillation measured by cross-validation. A teacher run (``--save-soft``) keeps, per
fold, its float model's probabilities on every cross-validated image, averaged over its fixed
views (test-time augmentation). A student run (``--teachers``) trains fold k towards a mix of
the labels and the mean of its teachers' fold-k probabilities.

Why per fold: the out-of-fold probabilities a kept run saved came from models that trained on
the other folds, the student's held-out fold among them, so training a student on them would
leak that fold's labels into its score. Every teacher's fold file records the images that
trained it, and a student's fold is refused if any of them is not its own training image.
"""

import hashlib
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..shared.atomic import atomic_write_bytes
from ..shared.errors import RecyclopsError

SOFT_SUFFIX = ".soft.npz"


class DistillError(RecyclopsError):
    """A teacher run cannot teach this student (missing fold, other images, other classes)."""


def soft_file(out: Path, fold: int) -> Path:
    return out / "folds" / f"fold-{fold}{SOFT_SUFFIX}"


def save_soft(
    out: Path,
    fold: int,
    key: str,
    shas: list[str],
    trained: list[str],
    categories: list[str],
    probs: np.ndarray,
) -> None:
    """One fold's teacher probabilities (``shas`` rows) and the images that trained it."""
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        key=np.array(key),
        shas=np.array(shas),
        trained=np.array(sorted(trained)),
        categories=np.array(categories),
        probs=probs.astype(np.float32),
    )
    atomic_write_bytes(soft_file(out, fold), buf.getvalue())


def _load(teacher: Path, fold: int) -> dict[str, np.ndarray]:
    path = soft_file(teacher, fold)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise DistillError(
            f"{path}: no teacher probabilities for fold {fold}; run the teacher with "
            f"'recyclops evaluate --cv K --save-soft --out {teacher}'"
        ) from None
    except (OSError, ValueError) as exc:
        raise DistillError(f"{path}: unreadable teacher probabilities: {exc}") from None


def soften(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T) row by row (T = 1: unchanged)."""
    if temperature == 1.0:
        return probs.astype(np.float64)
    logits = np.log(np.clip(probs.astype(np.float64), 1e-12, None)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def teacher_identity(
    teachers: Sequence[Path], folds: list[int], alpha: float, temperature: float = 1.0
) -> str:
    """What a student's saved folds depend on beyond its own recipe: its teachers' recipes
    (their fold keys), the weight of their probabilities and their temperature."""
    text = f"distill {alpha!r}" + (f" T {temperature!r}" if temperature != 1.0 else "")
    for t in teachers:
        keys = sorted({str(_load(t, f)["key"]) for f in folds})
        text += f"|{','.join(keys)}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def student_targets(
    teachers: Sequence[Path],
    fold: int,
    shas: list[str],
    labels: np.ndarray,
    categories: list[str],
    trained: list[str],
    alpha: float,
    temperature: float = 1.0,
) -> np.ndarray:
    """Training targets for every row of ``shas``: ``(1 - alpha)`` one-hot label plus
    ``alpha`` times the mean teacher probability, each teacher's softened by
    ``temperature`` first (softmax(log p / T): a teacher's probabilities on the images it
    trained on are nearly its labels, and T > 1 brings out how it ranks the other classes).
    Only a teacher trained on none but ``trained`` (the student's fold-k training images)
    may teach fold k."""
    if not teachers:
        raise DistillError("distillation needs at least one teacher run")
    if not 0.0 < alpha <= 1.0:
        raise DistillError(f"--distill {alpha}: the teachers' weight must be in (0, 1]")
    if not temperature > 0.0:
        raise DistillError(f"--distill-temperature {temperature}: must be above 0")
    allowed = set(trained)
    total = np.zeros((len(shas), len(categories)), np.float64)
    for t in teachers:
        data = _load(t, fold)
        where = soft_file(t, fold)
        if list(data["categories"]) != list(categories):
            raise DistillError(
                f"{where}: classes {list(data['categories'])}, the student has {categories}"
            )
        foreign = set(data["trained"].tolist()) - allowed
        if foreign:
            raise DistillError(
                f"{where}: this teacher's fold {fold} trained on {len(foreign)} images outside "
                f"the student's {len(allowed)} training images: its probabilities would leak "
                "the held-out fold (the same data and --cv are needed)"
            )
        row = {s: i for i, s in enumerate(data["shas"].tolist())}
        missing = [s for s in shas if s not in row]
        if missing:
            raise DistillError(f"{where}: no probabilities for {len(missing)} images")
        total += soften(data["probs"][[row[s] for s in shas]], temperature)
    mean = total / len(teachers)
    onehot = np.eye(len(categories))[labels]
    return ((1.0 - alpha) * onehot + alpha * mean).astype(np.float32)
