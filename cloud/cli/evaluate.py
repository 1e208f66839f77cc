"""``recyclops evaluate --cv K``: K-fold cross-validated int8 accuracy of a recipe over the
non-test images (the figure that chooses recipes; the test split stays for the blessing).

``recyclops evaluate --compare REF NEW``: two such runs paired image by image (no training).

``recyclops evaluate --ensemble RUN RUN ...``: what those runs would score together (no
training): the bound on distilling them into one model."""

import argparse
import logging
from pathlib import Path
from typing import Any

from ...shared.commands import AddCommon
from ...shared.errors import ConfigError
from .common import add_train_flags, existing_dir, load_config, train_config

HELP = "cross-validated int8 accuracy of a training recipe"
logger = logging.getLogger(__name__)


def _folds(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected fold numbers like 0,2") from None


def configure(parser: argparse.ArgumentParser, add_common: AddCommon) -> None:
    add_common(parser)
    parser.add_argument("--cv", type=int, default=5, metavar="K", help="folds (default 5)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--data", default="data", help="data set folder from 'recyclops setup' (default ./data)"
    )
    source.add_argument(
        "--folders",
        metavar="DIR",
        help="a plain <category>/*.jpg tree instead (e.g. TrashNet); images named by hash",
    )
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="where decoded pixels are cached (default DATA/.cache; needed for a read-only tree)",
    )
    parser.add_argument(
        "--out",
        default="crossval",
        help="results folder (default ./crossval); saved folds of the same recipe are reused",
    )
    parser.add_argument(
        "--inner-val",
        type=float,
        metavar="FRACTION",
        help="inner validation slice of the training folds, for early stopping "
        "(default: the recipe's validation_split)",
    )
    parser.add_argument(
        "--folds", type=_folds, metavar="I,J", help="run only these folds (0-based) this time"
    )
    parser.add_argument(
        "--compare",
        nargs=2,
        action="append",
        metavar=("REF", "NEW"),
        help="instead of training: pair two runs' --out folders image by image (exact "
        "McNemar); repeat for more pairs, e.g. a second seed, and their counts add",
    )
    parser.add_argument(
        "--ensemble",
        nargs="+",
        metavar="RUN",
        help="instead of training: combine two or more runs' --out folders image by image "
        "(mean of saved probabilities, else a vote) and score the ensemble against its best "
        "member",
    )
    parser.add_argument(
        "--save-soft",
        action="store_true",
        help="a teacher run: keep every fold's float probabilities on every image (mean over "
        "its fixed views) for a student's --teachers",
    )
    parser.add_argument(
        "--teach-pairs",
        action="store_true",
        help="a teacher run for out-of-sample distillation: for every pair of folds (j, k) "
        "the students of --folds need, train on the other K - 2 folds and keep the "
        "probabilities (K(K - 1)/2 trainings for all folds); a student names it in --teachers",
    )
    parser.add_argument(
        "--teachers",
        nargs="+",
        type=Path,
        metavar="RUN",
        help="a distilled student: train each fold towards these teacher runs' probabilities "
        "for the same fold (runs made with --save-soft on the same data and folds)",
    )
    parser.add_argument(
        "--distill",
        type=float,
        metavar="ALPHA",
        help="with --teachers: the teachers' weight in the training targets, the labels "
        "having the rest (default 0.5)",
    )
    parser.add_argument(
        "--distill-temperature",
        type=float,
        metavar="T",
        help="with --teachers: soften each teacher's probabilities, softmax(log p / T), "
        "before they are averaged (default 1: as saved)",
    )
    add_train_flags(parser, skip=frozenset({"channel"}))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.compare:
        from ..cv_compare import compare, format_comparison, load_run

        print(format_comparison(compare([(load_run(a), load_run(b)) for a, b in args.compare])))
        return 0
    if args.ensemble:
        from ..cv_compare import load_run
        from ..cv_ensemble import ensemble, format_ensemble

        print(format_ensemble(ensemble([load_run(r) for r in args.ensemble])))
        return 0
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads
    from ..crossval import RESULT_FILE, Distill, run_crossval
    from ..dataset import dataset_from_folders, load_dataset

    if not args.teachers and (args.distill is not None or args.distill_temperature is not None):
        raise ConfigError("--distill and --distill-temperature need --teachers RUN ...")
    if args.teach_pairs and args.teachers:
        raise ConfigError("--teach-pairs trains teachers; it cannot also be a --teachers student")
    config = load_config(args)
    tc = train_config(args, config)
    cache = Path(args.cache_dir) if args.cache_dir else None
    if args.folders:
        ds = dataset_from_folders(existing_dir(args.folders), cache_dir=cache)
        if not ds.labels:
            raise ConfigError(f"{args.folders}: no images in <category>/ folders")
    else:
        ds = load_dataset(args.data)
        ds.cache_dir = cache
    common: dict[str, Any] = {
        "inner_fraction": args.inner_val,
        "only": args.folds,
        "verbose": 2 if args.verbose else 0,
    }
    if args.teach_pairs:
        from ..cv_pairs import PAIRS_FILE, format_pairs, run_pair_teachers

        pairs = run_pair_teachers(tc, ds, args.out, args.cv, **common)
        print(format_pairs(pairs))
        print(f"written: {Path(args.out) / PAIRS_FILE}")
        return 0
    result = run_crossval(
        tc,
        ds,
        args.out,
        args.cv,
        **common,
        distill=Distill(
            tuple(args.teachers or ()),
            0.5 if args.distill is None else args.distill,
            args.save_soft,
            1.0 if args.distill_temperature is None else args.distill_temperature,
        ),
    )
    print(format_table(result))
    print(f"written: {Path(args.out) / RESULT_FILE}")
    return 0


def format_table(result: dict[str, Any]) -> str:
    """A readable summary: per class mean ± std over folds and pooled, then per fold."""

    def pct(v: float | None) -> str:
        return "–" if v is None else f"{100 * v:.1f}"

    q, fl = result["int8"], result["float"]
    lines = [
        f"{result['k']}-fold cross-validation of int8 accuracy over "
        f"{result['images']['cross_validated']} non-test images "
        f"({result['images']['test_untouched']} test images untouched)"
        + ("" if result["complete"] else f" — only {q['folds']} folds done"),
        "",
        f"{'class':<12} {'images':>6} {'mean ± std (%)':>16} {'pooled (%)':>11} {'95% CI':>13}",
    ]
    for c in result["categories"]:
        r = q["per_class"][c]
        lo, hi = r["pooled_ci95"]
        lines.append(
            f"{c:<12} {r['images']:>6} {pct(r['mean']) + ' ± ' + pct(r['std']):>16} "
            f"{pct(r['pooled']):>11} {pct(lo) + '–' + pct(hi):>13}"
        )
    lo, hi = q["pooled_ci95"]
    lines.append(
        f"{'ALL':<12} {q['images']:>6} {pct(q['mean']) + ' ± ' + pct(q['std']):>16} "
        f"{pct(q['pooled']):>11} {pct(lo) + '–' + pct(hi):>13}"
    )
    lines += [
        f"float: {pct(fl['mean'])} ± {pct(fl['std'])} (int8 − float "
        f"{100 * ((q['mean'] or 0) - (fl['mean'] or 0)):+.2f} points)",
    ]
    if result.get("selected"):
        sel = result["selected"]["int8"]
        lo, hi = sel["pooled_ci95"]
        lines.append(
            f"before the refit (epochs chosen on the inner slice): int8 {pct(sel['mean'])} ± "
            f"{pct(sel['std'])}, pooled {pct(sel['pooled'])} ({pct(lo)}–{pct(hi)})"
        )
    if result.get("before_qat"):
        lines.append(_before_qat_line(result, pct))
    lines += [
        "",
        f"{'fold':>4} {'train':>6} {'inner val':>9} {'held out':>8} {'int8 %':>7} "
        f"{'float %':>7} {'epochs':>11} {'minutes':>7}",
    ]
    for r in result["folds"]:
        epochs = "+".join(str(s["epochs"]) for s in r["stages"])
        if "refit" in r:  # then the refit's epochs, as the inner slice chose them
            epochs += ">" + "+".join(str(e) for e in r["refit"]["epochs"])
        lines.append(
            f"{r['fold']:>4} {r['images']['training']:>6} {r['images']['inner_val']:>9} "
            f"{r['images']['held_out']:>8} {pct(r['int8']['accuracy']):>7} "
            f"{pct(r['float']['accuracy']):>7} {epochs:>11} {r['seconds']['total'] / 60:>7.1f}"
        )
    cost = result["cost"]
    lines.append(
        f"cost: {cost['this_run_minutes']:.1f} min this run (base activations "
        f"{cost['features_seconds_this_run'] / 60:.1f} min), folds {cost['fold_minutes_total']:.1f}"
        " min in all"
    )
    return "\n".join(lines)


def _before_qat_line(result: dict[str, Any], pct: Any) -> str:
    """The same models before their quantisation-aware epochs, paired image by image."""
    from ..stats import paired

    before, q = result["before_qat"], result["int8"]
    rows = [p for p in result["predictions"] if "int8_before_qat" in p]
    pair = paired(
        [p["int8"] == p["label"] for p in rows], [p["int8_before_qat"] == p["label"] for p in rows]
    )
    return (
        f"before the quantisation-aware epochs: int8 {pct(before['int8']['mean'])} ± "
        f"{pct(before['int8']['std'])}, float {pct(before['float']['mean'])}; after them int8 "
        f"{pct(q['mean'])}: {pair.only_ref} images right only before, {pair.only_new} only "
        f"after ({pair.delta_points:+.1f} points, p better {pair.p_better:.3g}, "
        f"p worse {pair.p_worse:.3g})"
    )
