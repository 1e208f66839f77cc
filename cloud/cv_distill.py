"""Distillation measured by cross-validation. A teacher run (``--save-soft``) keeps, per
fold, its float model's probabilities on every cross-validated image, averaged over its fixed
views (test-time augmentation). A student run (``--teachers``) trains fold k towards a mix of
the labels and the mean of its teachers' probabilities for fold k.

Why per fold: the out-of-fold probabilities a kept run saved came from models that trained on
the other folds, the student's held-out fold among them, so training a student on them would
leak that fold's labels into its score. Every teacher's file records the images that trained
it, and a student's fold is refused if any of them is not its own training image.

A per-fold teacher's probabilities on the student's training images are in sample: it trained
on them, and gives back their labels. Out of sample needs a teacher per pair of folds
(``--teach-pairs``): the pair (j, k) trains on the other K - 2 folds and teaches fold k's
student on fold j's images and fold j's student on fold k's, having seen neither.
"""

import hashlib
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..shared.atomic import atomic_write_bytes
from ..shared.errors import RecyclopsError

SOFT_SUFFIX = ".soft.npz"


class DistillError(RecyclopsError):
    """A teacher run cannot teach this student (missing fold, other images, other classes)."""


def soft_file(out: Path, fold: int) -> Path:
    return out / "folds" / f"fold-{fold}{SOFT_SUFFIX}"


def pair_file(out: Path, j: int, k: int) -> Path:
    """The teacher that saw neither fold j nor fold k (the order does not matter)."""
    a, b = sorted((j, k))
    return out / "folds" / f"pair-{a}-{b}{SOFT_SUFFIX}"


def pairs_for(folds: list[int], k: int) -> list[tuple[int, int]]:
    """Every pair of folds that the students of ``folds`` need a teacher for."""
    return sorted({(min(f, j), max(f, j)) for f in folds for j in range(k) if j != f})


def save_soft(
    path: Path,
    key: str,
    shas: list[str],
    trained: list[str],
    categories: list[str],
    probs: np.ndarray,
) -> None:
    """One teacher's probabilities (``shas`` rows) and the images that trained it."""
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        key=np.array(key),
        shas=np.array(shas),
        trained=np.array(sorted(trained)),
        categories=np.array(categories),
        probs=probs.astype(np.float32),
    )
    atomic_write_bytes(path, buf.getvalue())


def soft_key(path: Path) -> str | None:
    """The recipe key a saved teacher file was made with (None: missing or unreadable)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return str(data["key"])
    except (OSError, ValueError, KeyError):
        return None


def _load(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise DistillError(f"{path}: unreadable teacher probabilities: {exc}") from None


def _sources(teacher: Path, fold: int, k: int) -> list[tuple[Path, int | None]]:
    """The files that teach fold ``fold``'s student, each with the fold whose images it
    teaches (None: all of them, a per-fold teacher)."""
    single = soft_file(teacher, fold)
    pairs = [(pair_file(teacher, j, fold), j) for j in range(k) if j != fold]
    if single.is_file() or not any(p.is_file() for p, _ in pairs):
        if not single.is_file():
            raise DistillError(
                f"{single}: no teacher probabilities for fold {fold}; run the teacher with "
                f"'recyclops evaluate --cv {k} --save-soft --out {teacher}' (or, out of "
                "sample, --teach-pairs)"
            )
        return [(single, None)]
    for path, j in pairs:
        if not path.is_file():
            raise DistillError(
                f"{path}: no teacher probabilities for the pair of folds {j} and {fold}; run "
                f"'recyclops evaluate --cv {k} --teach-pairs --folds {fold} "
                f"--out {teacher}'"
            )
    return list(pairs)


def soften(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T) row by row (T = 1: unchanged)."""
    if temperature == 1.0:
        return probs.astype(np.float64)
    logits = np.log(np.clip(probs.astype(np.float64), 1e-12, None)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def teacher_identity(
    teachers: Sequence[Path],
    folds: list[int],
    alpha: float,
    temperature: float = 1.0,
    k: int | None = None,
) -> str:
    """What a student's saved folds depend on beyond its own recipe: its teachers' recipes
    (their files' keys), the weight of their probabilities and their temperature."""
    k = k if k is not None else max(folds) + 1
    text = f"distill {alpha!r}" + (f" T {temperature!r}" if temperature != 1.0 else "")
    for t in teachers:
        keys = sorted({str(_load(p)["key"]) for f in folds for p, _ in _sources(t, f, k)})
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
    fold_of: Mapping[str, int] | None = None,
) -> np.ndarray:
    """Training targets for every row of ``shas``: ``(1 - alpha)`` one-hot label plus
    ``alpha`` times the mean teacher probability, each teacher's softened by
    ``temperature`` first (softmax(log p / T): a teacher's probabilities on the images it
    trained on are nearly its labels, and T > 1 brings out how it ranks the other classes).
    Only a teacher trained on none but ``trained`` (the student's fold-k training images)
    may teach fold k. A pair teacher (``fold_of`` says which fold each image is in) teaches
    only the images of the fold it did not see; the held-out fold's rows, which never train,
    get the label."""
    if not teachers:
        raise DistillError("distillation needs at least one teacher run")
    if not 0.0 < alpha <= 1.0:
        raise DistillError(f"--distill {alpha}: the teachers' weight must be in (0, 1]")
    if not temperature > 0.0:
        raise DistillError(f"--distill-temperature {temperature}: must be above 0")
    allowed = set(trained)
    fold_of = fold_of or {}
    k = max([fold, *fold_of.values()]) + 1
    onehot = np.eye(len(categories))[labels]
    total = np.zeros((len(shas), len(categories)), np.float64)
    for t in teachers:
        mine = onehot.copy()
        for where, j in _sources(t, fold, k):
            data = _load(where)
            if list(data["categories"]) != list(categories):
                raise DistillError(
                    f"{where}: classes {list(data['categories'])}, the student has {categories}"
                )
            seen = set(data["trained"].tolist())
            foreign = seen - allowed
            if foreign:
                raise DistillError(
                    f"{where}: this teacher trained on {len(foreign)} images outside the "
                    f"student's {len(allowed)} fold-{fold} training images: its probabilities "
                    "would leak the held-out fold (the same data and --cv are needed)"
                )
            rows = [i for i, s in enumerate(shas) if j is None or fold_of.get(s) == j]
            taught = [shas[i] for i in rows]
            if j is not None and seen.intersection(taught):
                raise DistillError(
                    f"{where}: this teacher trained on {len(seen.intersection(taught))} of the "
                    f"fold-{j} images it should teach: its probabilities are not out of sample"
                )
            row = {s: i for i, s in enumerate(data["shas"].tolist())}
            missing = [s for s in taught if s not in row]
            if missing:
                raise DistillError(f"{where}: no probabilities for {len(missing)} images")
            mine[rows] = soften(data["probs"][[row[s] for s in taught]], temperature)
        total += mine
    mean = total / len(teachers)
    return ((1.0 - alpha) * onehot + alpha * mean).astype(np.float32)
