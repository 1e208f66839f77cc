"""Paired comparison of cross-validation runs (``recyclops evaluate --compare REF NEW``).

Two recipes cross-validated with the same K score the same images out of fold, so the exact
McNemar test (``stats.paired``) applies image by image: only the images exactly one of them
gets right carry information. Means over folds cannot say this; a pooled interval of ±1.6
points hides a real one-point gain that the paired test can see.

Several pairs (``--compare`` again, for example the same two recipes under a second seed)
add their discordant counts: each pair is a fresh draw of the training noise on the same
images, so the sum is a sharper test of the same question than either pair alone.

A run is read from its folder: ``crossval.json`` and the fold files written as each fold
ended (a run cut off after some folds still counts, on its folds), or from a
``crossval.json.gz`` kept after its folder is gone (docs/cv/). Only images both runs scored
are compared, and an image must sit in the same fold in both.
"""

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .crossval import FOLDS_DIR, RESULT_FILE, CrossValError
from .stats import Paired, paired, wilson

__all__ = [
    "CompareError",
    "Run",
    "accuracy",
    "common_images",
    "compare",
    "format_comparison",
    "load_run",
    "paired_dict",
]


class CompareError(CrossValError):
    """Two cross-validation runs cannot be compared (missing, unreadable or other folds)."""


@dataclass(frozen=True)
class Run:
    """One cross-validation run's out-of-fold int8 predictions, by image."""

    path: Path
    categories: list[str]
    folds: list[int]
    labels: dict[str, str]  # sha256 -> true category
    fold_of: dict[str, int]
    predicted: dict[str, str]
    # int8 probabilities in ``categories`` order, where the run saved them
    probs: dict[str, list[float]] = field(default_factory=dict)


def _read(path: Path) -> dict[str, Any]:
    try:
        if path.suffix == ".gz":  # a run kept for later pairing (docs/cv/)
            with gzip.open(path, "rt", encoding="utf-8") as f:
                data = json.load(f)
        else:
            data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CompareError(f"{path}: no such file") from None
    except (OSError, EOFError, ValueError) as exc:  # EOFError: a cut-off .gz
        raise CompareError(f"{path}: unreadable: {exc}") from None
    if not isinstance(data, dict):
        raise CompareError(f"{path}: not a cross-validation result")
    return data


def load_run(path: str | Path) -> Run:
    """A run from its ``--out`` folder (or its ``crossval.json``, gzipped or not).

    The fold files are read too: a run resumed and cut off again has more folds on disk than
    its last ``crossval.json``. Fold files of another recipe left in the folder are ignored."""
    p = Path(path)
    result = p / RESULT_FILE if p.is_dir() else p
    if not p.exists():
        raise CompareError(f"{p}: no such cross-validation folder")
    parts: list[dict[str, Any]] = []
    key = categories = None
    if result.is_file():
        data = _read(result)
        parts.append(data)
        key, categories = data.get("key"), data.get("categories")
    if p.is_dir():
        files = [_read(f) for f in sorted((p / FOLDS_DIR).glob("fold-*.json"))]
        if key is None:
            keys = {d.get("key") for d in files}
            if len(keys) > 1:
                raise CompareError(f"{p}: fold files of {len(keys)} different recipes; keep one")
            key = keys.pop() if keys else None
        parts += [d for d in files if d.get("key") == key]
        if not parts:
            raise CompareError(f"{p}: neither {RESULT_FILE} nor {FOLDS_DIR}/fold-*.json")
    labels: dict[str, str] = {}
    fold_of: dict[str, int] = {}
    predicted: dict[str, str] = {}
    probs: dict[str, list[float]] = {}
    try:
        for part in parts:
            for row in part["predictions"]:
                sha = row["sha256"]
                labels[sha], fold_of[sha], predicted[sha] = row["label"], row["fold"], row["int8"]
                if "probs" in row:
                    probs[sha] = row["probs"]
    except (KeyError, TypeError) as exc:
        raise CompareError(
            f"{p}: predictions without {exc}: not a cross-validation result"
        ) from None
    if not predicted:
        raise CompareError(f"{p}: no out-of-fold predictions")
    return Run(
        path=p,
        categories=list(categories) if categories else sorted(set(labels.values())),
        folds=sorted(set(fold_of.values())),
        labels=labels,
        fold_of=fold_of,
        predicted=predicted,
        probs=probs,
    )


def common_images(ref: Run, new: Run) -> list[str]:
    """The images both runs scored, refused unless they sit in the same folds under the
    same labels (otherwise the runs are not paired)."""
    shas = sorted(ref.predicted.keys() & new.predicted.keys())
    moved = [s for s in shas if ref.fold_of[s] != new.fold_of[s]]
    if moved:
        raise CompareError(
            f"{len(moved)} images sit in other folds in {ref.path} and {new.path} "
            f"(e.g. {moved[0][:12]}): the runs used other folds or data"
        )
    relabelled = [s for s in shas if ref.labels[s] != new.labels[s]]
    if relabelled:
        raise CompareError(
            f"{len(relabelled)} images carry other labels in {ref.path} and {new.path} "
            f"(e.g. {relabelled[0][:12]}): compare runs on the same labels"
        )
    if not shas:
        raise CompareError(f"{ref.path} and {new.path} scored no image in common")
    return shas


def accuracy(correct: int, n: int) -> dict[str, Any]:
    lo, hi = wilson(correct, n)
    return {
        "correct": correct,
        "images": n,
        "accuracy": correct / n if n else None,
        "ci95": [lo, hi],
    }


def paired_dict(p: Paired) -> dict[str, Any]:
    return {
        "images": p.images,
        "only_new": p.only_new,
        "only_ref": p.only_ref,
        "delta_points": p.delta_points,
        "p_better": p.p_better,
        "p_worse": p.p_worse,
    }


def compare(pairs: list[tuple[Run, Run]]) -> dict[str, Any]:
    """Every pair's paired counts on its common images, overall and per class, and their sum."""
    if not pairs:
        raise CompareError("nothing to compare")
    rows: list[dict[str, Any]] = []
    totals: dict[str, list[int]] = {}  # class ("" = all) -> [images, only_new, only_ref]
    categories: list[str] = []
    for ref, new in pairs:
        shas = common_images(ref, new)
        ok_ref = [ref.predicted[s] == ref.labels[s] for s in shas]
        ok_new = [new.predicted[s] == new.labels[s] for s in shas]
        for c in [*ref.categories, *new.categories]:
            if c not in categories:
                categories.append(c)
        counts = {}  # class ("" = all) -> this pair's paired counts
        for c in ["", *categories]:
            ix = [i for i, s in enumerate(shas) if not c or ref.labels[s] == c]
            if not ix:
                continue
            p = counts[c] = paired([ok_new[i] for i in ix], [ok_ref[i] for i in ix])
            t = totals.setdefault(c, [0, 0, 0])
            t[0], t[1], t[2] = t[0] + p.images, t[1] + p.only_new, t[2] + p.only_ref
        rows.append(
            {
                "ref": str(ref.path),
                "new": str(new.path),
                "folds": sorted({ref.fold_of[s] for s in shas}),
                "ref_int8": accuracy(sum(ok_ref), len(shas)),
                "new_int8": accuracy(sum(ok_new), len(shas)),
                "paired": paired_dict(counts[""]),
                "per_class": {c: paired_dict(p) for c, p in counts.items() if c},
            }
        )
    summed = {c: paired_dict(Paired(*t)) for c, t in totals.items()}
    return {
        "pairs": rows,
        "total": summed[""],
        "per_class": {c: summed[c] for c in categories if c in summed},
    }


def format_comparison(result: dict[str, Any]) -> str:
    """The pairs, then (with more than one) their sum, then per class."""

    def line(name: str, p: dict[str, Any]) -> str:
        return (
            f"{name:<12} {p['images']:>6} {p['only_ref']:>8} {p['only_new']:>8} "
            f"{p['delta_points']:>+7.1f} {p['p_better']:>9.3f} {p['p_worse']:>8.3f}"
        )

    header = (
        f"{'':<12} {'images':>6} {'ref only':>8} {'new only':>8} {'points':>7} "
        f"{'p better':>9} {'p worse':>8}"
    )
    lines = []
    for i, r in enumerate(result["pairs"], 1):
        ra, na = r["ref_int8"], r["new_int8"]
        lines += [
            f"pair {i}: ref {r['ref']} against new {r['new']} (folds "
            f"{','.join(map(str, r['folds']))})",
            f"  int8 on the same {ra['images']} images: ref {100 * ra['accuracy']:.1f}% "
            f"({100 * ra['ci95'][0]:.1f}–{100 * ra['ci95'][1]:.1f}), new "
            f"{100 * na['accuracy']:.1f}% ({100 * na['ci95'][0]:.1f}–{100 * na['ci95'][1]:.1f})",
        ]
    title = "all pairs summed" if len(result["pairs"]) > 1 else "paired, exact one-sided McNemar"
    lines += ["", title, header, line("ALL", result["total"])]
    lines += [line(c, p) for c, p in result["per_class"].items()]
    return "\n".join(lines)
