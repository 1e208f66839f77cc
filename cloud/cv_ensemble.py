"""What an ensemble of cross-validation runs would score (``recyclops evaluate --ensemble``).

Distilling several models into one student can at best reach what the several score
together, so this bound is measured before any distillation is trained: the runs' saved
out-of-fold int8 answers are combined image by image, with no training. Where every run
saved its probabilities (``predictions[].probs``) they are averaged, as a distillation
teacher would be; otherwise the runs vote, a tie going to the first run listed.

Also reported: each member on the same images, the share of images at least one member gets
right (what no combination of these answers can beat), and the ensemble paired against its
best member (exact one-sided McNemar).
"""

from collections import Counter
from typing import Any

from .cv_compare import CompareError, Run, accuracy, common_images, paired_dict
from .stats import paired

__all__ = ["ensemble", "format_ensemble"]


def _combined(runs: list[Run], shas: list[str], categories: list[str]) -> tuple[str, list[str]]:
    """The ensemble's answer for every image, and how it was combined."""
    if all(s in r.probs for r in runs for s in shas):
        answers = []
        for s in shas:
            mean = [sum(r.probs[s][c] for r in runs) / len(runs) for c in range(len(categories))]
            answers.append(categories[max(range(len(categories)), key=mean.__getitem__)])
        return "mean of probabilities", answers
    answers = []
    for s in shas:
        votes = Counter(r.predicted[s] for r in runs)
        top = max(votes.values())
        answers.append(next(r.predicted[s] for r in runs if votes[r.predicted[s]] == top))
    return "majority vote (ties: the first run)", answers


def ensemble(runs: list[Run]) -> dict[str, Any]:
    """The runs combined on the images all of them scored, against each member."""
    if len(runs) < 2:
        raise CompareError("an ensemble needs at least two runs")
    first = runs[0]
    shas = set(first.predicted)
    for other in runs[1:]:
        shas &= set(common_images(first, other))
    ordered = sorted(shas)
    if not ordered:
        raise CompareError("the runs scored no image in common")
    categories = first.categories
    for r in runs[1:]:
        if r.categories != categories:
            raise CompareError(
                f"{r.path} has categories {r.categories}, {first.path} {categories}: "
                "an ensemble needs the same categories in the same order"
            )
    short = [str(r.path) for r in runs if any(len(p) != len(categories) for p in r.probs.values())]
    if short:
        raise CompareError(f"{short[0]}: saved probabilities not one per category")
    unknown = {r.predicted[s] for r in runs for s in ordered} - set(categories)
    if unknown:
        raise CompareError(f"answers outside {first.path}'s categories: {sorted(unknown)}")
    method, answers = _combined(runs, ordered, categories)
    truth = [first.labels[s] for s in ordered]
    ok = [a == t for a, t in zip(answers, truth, strict=True)]
    members = [[r.predicted[s] == first.labels[s] for s in ordered] for r in runs]
    best = max(range(len(runs)), key=lambda i: sum(members[i]))
    per_class = {}
    for c in categories:
        ix = [i for i, t in enumerate(truth) if t == c]
        if ix:
            per_class[c] = accuracy(sum(ok[i] for i in ix), len(ix))
    return {
        "method": method,
        "folds": sorted({first.fold_of[s] for s in ordered}),
        "members": [
            {"run": str(r.path), "int8": accuracy(sum(m), len(m))}
            for r, m in zip(runs, members, strict=True)
        ],
        "ensemble": accuracy(sum(ok), len(ok)),
        "per_class": per_class,
        "any_right": accuracy(sum(any(col) for col in zip(*members, strict=True)), len(ok)),
        "best_member": str(runs[best].path),
        "against_best": paired_dict(paired(ok, members[best])),
    }


def format_ensemble(result: dict[str, Any]) -> str:
    """Members, the ensemble with its interval and per class, the bound, the paired test."""

    def pct(a: dict[str, Any]) -> str:
        lo, hi = a["ci95"]
        return f"{100 * a['accuracy']:.1f}% ({100 * lo:.1f}–{100 * hi:.1f})"

    e = result["ensemble"]
    lines = [
        f"ensemble of {len(result['members'])} runs, {result['method']}, on the "
        f"{e['images']} images all of them scored (folds "
        f"{','.join(map(str, result['folds']))})",
    ]
    lines += [f"  member {m['run']}: int8 {pct(m['int8'])}" for m in result["members"]]
    lines += [
        f"  ensemble: {pct(e)}",
        f"  at least one member right: {pct(result['any_right'])}",
        "  per class: "
        + ", ".join(f"{c} {100 * a['accuracy']:.1f}" for c, a in result["per_class"].items()),
    ]
    p = result["against_best"]
    lines.append(
        f"  against the best member ({result['best_member']}): right only there "
        f"{p['only_ref']}, only in the ensemble {p['only_new']}, {p['delta_points']:+.1f} "
        f"points, p better {p['p_better']:.3f}"
    )
    return "\n".join(lines)
