"""``recyclops audit``: likely label errors and near-duplicates of a data set, written to the
store (``audit/<run-id>.json``, ``audit/latest.json``) where the review page reads them.

``--inject-noise F`` flips a seeded fraction of the labels first and reports how many of the
flipped ones the label-issue ranking puts in its first N and 2N (N = the number flipped): the
figure that says whether a reviewer's time goes to the right images."""

import argparse
import logging
import random
from pathlib import Path
from typing import Any

from ...shared.commands import AddCommon
from ...shared.errors import ConfigError
from .common import add_store, add_train_flags, existing_dir, load_config, store_from, train_config

HELP = "find likely label errors and near-duplicates (out-of-sample, confident learning)"
logger = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser, add_common: AddCommon) -> None:
    add_common(parser)
    add_store(parser)
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--data", default="data", help="data set folder from 'recyclops setup' (default ./data)"
    )
    source.add_argument(
        "--folders", metavar="DIR", help="a plain <category>/*.jpg tree instead (e.g. TrashNet)"
    )
    parser.add_argument(
        "--cache-dir", metavar="DIR", help="feature cache (default DATA/.cache; outside a repo)"
    )
    parser.add_argument("--k", type=int, default=5, help="folds (default 5)")
    parser.add_argument("--cosine", type=float, default=0.95, help="near-duplicate cosine")
    parser.add_argument("--hash-distance", type=int, default=10, help="near-duplicate dHash bits")
    parser.add_argument(
        "--cosine-alone", type=float, default=0.985, help="cosine that alone makes a duplicate"
    )
    parser.add_argument("--out", metavar="FILE", help="also write the report here")
    parser.add_argument("--no-store", action="store_true", help="do not write to the store")
    parser.add_argument(
        "--inject-noise",
        type=float,
        metavar="FRACTION",
        help="flip this fraction of labels (seeded) and measure precision/recall at N and 2N",
    )
    parser.add_argument(
        "--noise-seed", type=int, default=0, help="seed of the folds and the injected noise"
    )
    add_train_flags(parser, skip=frozenset({"channel"}))
    parser.set_defaults(func=run)


def flip_labels(
    labels: dict[str, str], categories: list[str], fraction: float, seed: int
) -> tuple[dict[str, str], dict[str, str]]:
    """A copy with ``round(fraction·N)`` labels changed to another category at random;
    and the flipped images with their true label."""
    rng = random.Random(seed)
    shas = sorted(labels)
    chosen = rng.sample(shas, round(fraction * len(shas)))
    noisy = dict(labels)
    for sha in chosen:
        noisy[sha] = rng.choice([c for c in categories if c != labels[sha]])
    return noisy, {sha: labels[sha] for sha in chosen}


def ranking_precision(report: dict[str, Any], labels: dict[str, str], flipped: set[str]) -> dict:
    """How many of the flipped images the label-issue ranking puts in its first N and 2N.
    (How the review queue orders them is the console's business, measured in its tests: the
    cloud does not import the console.)"""
    ranked = [i["sha256"] for i in report["label_issues"]]
    n = len(flipped)
    out: dict[str, Any] = {"flipped": n, "images": len(labels), "issues_found": len(ranked)}
    for at in (n, 2 * n):
        hits = len(flipped & set(ranked[:at]))
        out[f"label_issue_ranking_at_{at}"] = {
            "precision": round(hits / max(1, min(at, len(ranked))), 3),
            "recall": round(hits / max(1, n), 3),
        }
    found = flipped & set(ranked)
    out["all_issues"] = {
        "precision": round(len(found) / max(1, len(ranked)), 3),
        "recall": round(len(found) / max(1, n), 3),
    }
    return out


def run(args: argparse.Namespace) -> int:
    import json
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ..audit import AuditOptions, identical_files, run_audit, save_local, write_report
    from ..dataset import dataset_from_folders, load_dataset

    config = load_config(args)
    tc = train_config(args, config)
    cache = Path(args.cache_dir) if args.cache_dir else None
    identical = None
    if args.folders:
        root = existing_dir(args.folders)
        ds = dataset_from_folders(root, cache_dir=cache)
        if not ds.labels:
            raise ConfigError(f"{args.folders}: no images in <category>/ folders")
        identical = identical_files(root, ds.categories)
    else:
        ds = load_dataset(args.data)
        ds.cache_dir = cache
    cache = cache or (ds.cache_dir or ds.root / ".cache")
    flipped: dict[str, str] = {}
    if args.inject_noise:
        ds.labels, flipped = flip_labels(
            ds.labels, ds.categories, args.inject_noise, args.noise_seed
        )
    options = AuditOptions(
        k=args.k,
        seed=args.noise_seed,
        cosine=args.cosine,
        hamming=args.hash_distance,
        cosine_alone=args.cosine_alone,
    )
    report = run_audit(ds, tc, cache, options, identical)
    if flipped:
        report["noise"] = {
            "fraction": args.inject_noise,
            "seed": args.noise_seed,
            **ranking_precision(report, ds.labels, set(flipped)),
        }
    if args.out:
        save_local(Path(args.out), report)
    if not args.no_store:
        key = write_report(store_from(args, config), report)
        print(f"report: {key} (and audit/latest.json)")
    nd = report["near_duplicates"]
    print(
        f"{report['dataset']['images']} images: {len(report['label_issues'])} likely label "
        f"errors ({report['method']['label_issues']}), {nd['count']} near-duplicate groups "
        f"({nd['cross_class']} across classes); the split keeps groups together: "
        f"{report['split']['groups_moved']} groups moved "
        f"({report['split']['straddled_test_boundary']} straddled the test boundary)"
    )
    for issue in report["label_issues"][:10]:
        print(
            f"  {issue['sha256'][:12]}… labelled {issue['label']}: the model says "
            f"{issue['suggested']} with p = {issue['p_suggested']:.2f}"
        )
    if "noise" in report:
        print("injected noise:", json.dumps(report["noise"]))
    return 0
