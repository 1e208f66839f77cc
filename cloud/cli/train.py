"""``recyclops train``: train, convert to int8, gate, and write a publishable run folder."""

import argparse
import logging

from ...shared.cli import add_common
from .common import add_train_flags, load_config, train_config

HELP = "train, convert to int8, check it, write a model"
logger = logging.getLogger(__name__)
EXIT_GATE_FAILED = 3


def configure(parser: argparse.ArgumentParser) -> None:
    add_common(parser)
    parser.add_argument(
        "--data", default="data", help="data set folder from 'recyclops setup' (default ./data)"
    )
    parser.add_argument("--runs", default="runs", help="where run folders go (default ./runs)")
    parser.add_argument("--run-id", help="name of the run folder (default: time + config hash)")
    add_train_flags(parser, skip=frozenset({"channel"}))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads
    from ..evaluate import load_gate
    from ..train import train

    config = load_config(args)
    tc = train_config(args, config)
    run_dir = train(tc, args.data, args.runs, run_id=args.run_id, verbose=2 if args.verbose else 0)
    gate = load_gate(run_dir)
    print(f"run: {run_dir}")
    print(f"test accuracy: float {gate['float_accuracy']:.1%}, int8 {gate['int8_accuracy']:.1%}")
    if not gate["passed"]:
        print("quality gate FAILED (this run will not publish):\n  " + "\n  ".join(gate["reasons"]))
        return EXIT_GATE_FAILED
    print(f"quality gate passed; publish with: recyclops publish {run_dir}")
    return 0
