"""The blessing: may this model replace the one serving its channel?

Every check is computed on the same test images (the hash split keeps them out of every
model's training, see ``cloud/dataset.py``), and every comparison is paired: two models on
the same images, judged by the exact McNemar test on the images where they disagree
(``cloud/stats.py``). The rules, their defaults and why are in docs/training.md.

1. Floor: int8 test accuracy at or above ``min_accuracy`` and its 95% interval above the
   majority-class rate; no judged class confidently below the class floor.
2. Champion: not worse beyond noise (one-sided p < ``significance``), not more than ``max_drop``
   points worse, and no judged class worse beyond noise (Bonferroni over the classes);
   with ``require = "better"`` also better beyond noise.
3. int8 against float: the same paired rules with ``int8_max_drop``.
A single image never decides: classes with fewer than ``min_class_support`` test images
are reported, not judged, and a drop bound needs at least two images net.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..shared.atomic import atomic_write_text
from ..shared.config import TrainConfig
from .stats import Paired, paired, wilson

GATE_FILE = "gate.json"
#: fewest net images a drop bound needs before it refuses (one image never decides)
MIN_NET_IMAGES = 2


@dataclass
class Champion:
    """The model serving the channel, scored on the test images it never trained on."""

    version: str
    categories: list[str]
    #: positions in the test split both models can be judged on
    index: np.ndarray
    #: its probabilities on those images, or None when it cannot be compared
    probs: np.ndarray | None
    note: str = ""


@dataclass
class Verdict:
    blessed: bool
    summary: str
    reasons: list[str]
    record: dict[str, Any] = field(default_factory=dict)

    def gate(self) -> dict[str, Any]:
        """The verdict as gate.json holds it (what ``load_verdict`` returns)."""
        data = {"blessed": self.blessed, "reasons": self.reasons, **self.record}
        data["summary"] = self.summary
        return data

    def save(self, run_dir: Path) -> None:
        atomic_write_text(run_dir / GATE_FILE, json.dumps(self.gate(), indent=1) + "\n")


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _accuracy(correct: np.ndarray) -> dict[str, Any]:
    n, k = len(correct), int(np.sum(correct))
    lo, hi = wilson(k, n)
    return {"accuracy": k / n if n else 0.0, "correct": k, "images": n, "interval": [lo, hi]}


def _pair_record(p: Paired) -> dict[str, Any]:
    return {
        "images": p.images,
        "only_new_right": p.only_new,
        "only_reference_right": p.only_ref,
        "delta_points": round(p.delta_points, 3),
        "p_worse": p.p_worse,
        "p_better": p.p_better,
    }


def _worse(p: Paired, alpha: float, max_drop: float) -> str | None:
    """Why ``p`` counts as worse, or None."""
    if p.p_worse < alpha:
        return (
            f"worse beyond noise: {p.only_ref} images lost, {p.only_new} gained "
            f"(exact McNemar p = {p.p_worse:.3g} < {alpha:g})"
        )
    if -p.delta_points > max_drop and p.only_ref - p.only_new >= MIN_NET_IMAGES:
        return f"{-p.delta_points:.1f} points worse (limit {max_drop:g})"
    return None


class _Judge:
    def __init__(self, config: TrainConfig, categories: list[str], y: np.ndarray) -> None:
        self.config = config
        self.categories = categories
        self.y = y
        self.reasons: list[str] = []
        self.notes: list[str] = []
        self.support = np.bincount(y, minlength=len(categories))
        self.judged = [i for i, n in enumerate(self.support) if n >= config.min_class_support]
        # Bonferroni: one family of per-class tests per comparison
        self.class_alpha = config.significance / max(1, len(self.judged))

    def floor(self, correct: np.ndarray) -> dict[str, Any]:
        cfg, n = self.config, len(self.y)
        chance = float(self.support.max() / n) if n else 1.0
        floor = cfg.min_accuracy if cfg.min_accuracy is not None else (1 + chance) / 2
        acc = _accuracy(correct)
        if acc["accuracy"] < floor:
            self.reasons.append(
                f"floor: int8 accuracy {_pct(acc['accuracy'])} is below the floor {_pct(floor)}"
            )
        if acc["interval"][0] <= chance:
            self.reasons.append(
                f"floor: the 95% interval of the accuracy ({_pct(acc['interval'][0])}–"
                f"{_pct(acc['interval'][1])}) does not clear the majority-class rate "
                f"{_pct(chance)}: not better than guessing beyond noise"
            )
        k = len(self.categories)
        class_floor = (
            cfg.min_class_accuracy if cfg.min_class_accuracy is not None else (1 + 1 / k) / 2
        )
        for i in self.judged:
            mask = self.y == i
            right = int(np.sum(correct[mask]))
            hi = wilson(right, int(mask.sum()))[1]
            if hi < class_floor:
                self.reasons.append(
                    f"floor: class {self.categories[i]} is right on {right} of {int(mask.sum())}"
                    f" test images; even its 95% upper bound {_pct(hi)} is below the class "
                    f"floor {_pct(class_floor)}"
                )
        return {**acc, "floor": floor, "majority_rate": chance, "class_floor": class_floor}

    def compare(
        self,
        what: str,
        new: np.ndarray,
        ref: np.ndarray,
        y: np.ndarray,
        max_drop: float,
        require_better: bool = False,
    ) -> dict[str, Any]:
        overall = paired(list(new), list(ref))
        record: dict[str, Any] = {"overall": _pair_record(overall), "classes": {}}
        why = _worse(overall, self.config.significance, max_drop)
        if why:
            self.reasons.append(f"{what}: {why}")
        if require_better and overall.p_better >= self.config.significance:
            self.reasons.append(
                f"{what}: not better beyond noise ({overall.only_new} images gained, "
                f"{overall.only_ref} lost, p = {overall.p_better:.3g}; require = better)"
            )
        for i in self.judged:
            mask = y == i
            if mask.sum() < self.config.min_class_support:
                continue
            p = paired(list(new[mask]), list(ref[mask]))
            record["classes"][self.categories[i]] = _pair_record(p)
            if p.p_worse < self.class_alpha:
                self.reasons.append(
                    f"{what}: class {self.categories[i]} is worse beyond noise "
                    f"({p.only_ref} images lost, {p.only_new} gained, p = {p.p_worse:.3g} "
                    f"< {self.class_alpha:.3g})"
                )
        return record


def bless(
    config: TrainConfig,
    categories: list[str],
    y: np.ndarray,
    int8_probs: np.ndarray,
    float_probs: np.ndarray,
    champion: Champion | None,
    *,
    version: str,
    model_sha256: str,
) -> Verdict:
    """Judge a challenger (its int8 and float outputs on the test split) against the floor,
    its own float model and the champion."""
    judge = _Judge(config, categories, y)
    q_right = int8_probs.argmax(axis=1) == y
    f_right = float_probs.argmax(axis=1) == y
    record: dict[str, Any] = {
        "version": version,
        "model_sha256": model_sha256,
        "test_images": len(y),
        "int8": judge.floor(q_right),
        "float": _accuracy(f_right),
    }
    record["int8_vs_float"] = judge.compare(
        "int8 against float", q_right, f_right, y, config.int8_max_drop
    )
    record["champion"] = None
    if champion is None:
        judge.notes.append("first model of this channel: judged by the floor alone")
    elif champion.probs is None:
        record["champion"] = {"version": champion.version, "compared": False}
        judge.notes.append(champion.note)
    else:
        idx = champion.index
        c_right = champion.probs.argmax(axis=1) == y[idx]
        record["champion"] = {
            "version": champion.version,
            "compared": True,
            "note": champion.note,
            "challenger": _accuracy(q_right[idx]),
            "champion": _accuracy(c_right),
            **judge.compare(
                f"against champion {champion.version}",
                q_right[idx],
                c_right,
                y[idx],
                config.max_drop,
                require_better=config.require == "better",
            ),
        }
        if len(idx) < config.min_class_support:
            judge.reasons.append(
                f"champion {champion.version}: only {len(idx)} test images were never "
                "trained on by either model; too few to compare"
            )
        if champion.note:
            judge.notes.append(champion.note)
    record["classes"] = {
        c: {
            "images": int(judge.support[i]),
            "int8_accuracy": float(np.mean(q_right[y == i])) if judge.support[i] else None,
            "float_accuracy": float(np.mean(f_right[y == i])) if judge.support[i] else None,
            "judged": i in judge.judged,
        }
        for i, c in enumerate(categories)
    }
    record["thresholds"] = {
        "min_accuracy": record["int8"]["floor"],
        "min_class_accuracy": record["int8"]["class_floor"],
        "min_class_support": config.min_class_support,
        "significance": config.significance,
        "class_significance": judge.class_alpha,
        "max_drop": config.max_drop,
        "int8_max_drop": config.int8_max_drop,
        "require": config.require,
    }
    record["notes"] = [n for n in judge.notes if n]
    blessed = not judge.reasons
    return Verdict(blessed, summarise(blessed, record, judge.reasons), judge.reasons, record)


def summarise(blessed: bool, record: dict[str, Any], reasons: list[str]) -> str:
    """The verdict as one readable block (printed by ``recyclops train``, in the card)."""
    q, f = record["int8"], record["float"]
    head = "BLESSED: fit to replace the model serving" if blessed else "NOT BLESSED"
    lines = [
        f"{head} ({record['version']})",
        f"  int8 {_pct(q['accuracy'])} on {q['images']} test images "
        f"(95% interval {_pct(q['interval'][0])}–{_pct(q['interval'][1])}); "
        f"floor {_pct(q['floor'])}",
    ]
    iv = record["int8_vs_float"]["overall"]
    lines.append(
        f"  int8 vs float {_pct(f['accuracy'])}: {iv['only_reference_right']} images lost, "
        f"{iv['only_new_right']} gained (p = {iv['p_worse']:.3g})"
    )
    ch = record.get("champion")
    if ch and ch.get("compared"):
        ov = ch["overall"]
        lines.append(
            f"  vs champion {ch['version']} on {ov['images']} shared test images: "
            f"{_pct(ch['challenger']['accuracy'])} vs {_pct(ch['champion']['accuracy'])}, "
            f"{ov['only_new_right']} gained, {ov['only_reference_right']} lost "
            f"(worse p = {ov['p_worse']:.3g}, better p = {ov['p_better']:.3g})"
        )
    small = [c for c, v in record["classes"].items() if not v["judged"] and v["images"]]
    if small:
        lines.append(
            f"  not judged alone (fewer than {record['thresholds']['min_class_support']} "
            f"test images): {', '.join(small)}"
        )
    lines += [f"  note: {n}" for n in record.get("notes", [])]
    lines += [f"  refused: {r}" for r in reasons]
    return "\n".join(lines)


def load_verdict(run_dir: Path) -> dict[str, Any]:
    """The run's gate.json; GateError when missing or unreadable."""
    from .evaluate import GateError

    path = Path(run_dir) / GATE_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GateError(
            f"{path}: missing; this run was not evaluated (re-run 'recyclops train')"
        ) from None
    except (OSError, ValueError) as exc:
        raise GateError(f"{path}: unreadable: {exc}") from None
    if "blessed" not in data:
        raise GateError(f"{path}: written by an older gate with no blessing; re-run training")
    return data
