"""``recyclops search``: a grid of trials on cached base features; resumable and shardable."""

import argparse
import logging
from pathlib import Path

from ...shared.commands import AddCommon
from .common import (
    add_store,
    add_train_flags,
    load_config,
    search_config,
    store_from,
    train_config,
)

HELP = "hyperparameter grid search, logged to TensorBoard"
logger = logging.getLogger(__name__)


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def _bools(text: str) -> list[bool]:
    table = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}
    try:
        return [table[v.strip().lower()] for v in text.split(",") if v]
    except KeyError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected on/off values, e.g. off,on") from None


def configure(parser: argparse.ArgumentParser, add_common: AddCommon) -> None:
    add_common(parser)
    add_store(parser)
    parser.add_argument("--data", default="data", help="data set folder (default ./data)")
    parser.add_argument("--out", default="search", help="results folder (default ./search)")
    parser.add_argument(
        "--grid", metavar="TOML", help="a file with a [search] section (else the config's)"
    )
    parser.add_argument("--batch-sizes", type=_ints, help="e.g. 4,8,16,32")
    parser.add_argument("--dropouts", type=_floats, help="e.g. 0,0.1,0.2")
    parser.add_argument("--optimizers", type=lambda t: t.split(","), help="e.g. adam,rmsprop")
    parser.add_argument("--learning-rates", type=_floats, help="e.g. 1e-4,1e-5")
    parser.add_argument("--fine-tunes", type=_bools, help="e.g. off,on")
    parser.add_argument("--trial-epochs", type=int, help="epochs per trial")
    parser.add_argument("--shard", default="0/1", help="run every N-th trial starting at I (I/N)")
    parser.add_argument("--name", help="search id (default: hash of configs and data set)")
    parser.add_argument("--retry-failed", action="store_true", help="re-run trials that failed")
    parser.add_argument(
        "--upload", action="store_true", help="also put results under runs/search/ in the store"
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="only gather results (local folder and the store) into a table and best.toml",
    )
    add_train_flags(parser, skip=frozenset({"channel"}))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads
    from ..search import gather, parse_shard, run_search, write_report

    config = load_config(args)
    base = train_config(args, config)
    grid_cfg = search_config(args, config)
    store = store_from(args, config) if (args.upload or args.report) else None
    if not args.report:
        print(f"grid of {grid_cfg.size} trials; this shard: {args.shard}")
        run_search(
            base,
            grid_cfg,
            args.data,
            args.out,
            shard=parse_shard(args.shard),
            store=store if args.upload else None,
            name=args.name,
            retry_failed=args.retry_failed,
        )
    results = gather(args.out, store, args.name)
    table, best = write_report(results, base, args.out)
    print(table)
    print(
        f"results: {Path(args.out) / 'results.csv'}; "
        f"TensorBoard: tensorboard --logdir {Path(args.out) / 'tensorboard'}"
    )
    if best:
        print(f"best config: {best}  (recyclops train -c {best})")
    return 0 if any(r.get("status") == "ok" for r in results) else 1
