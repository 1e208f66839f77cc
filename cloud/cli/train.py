"""``recyclops train``: train, convert to int8, judge it against the champion, write a run."""

import argparse
import logging

from ...shared.commands import AddCommon
from .common import add_store, add_train_flags, load_config, store_from, train_config

HELP = "train, convert to int8, check it, write a model"
logger = logging.getLogger(__name__)
EXIT_NOT_BLESSED = 3


def configure(parser: argparse.ArgumentParser, add_common: AddCommon) -> None:
    add_common(parser)
    add_store(parser)
    parser.add_argument(
        "--data", default="data", help="data set folder from 'recyclops setup' (default ./data)"
    )
    parser.add_argument("--runs", default="runs", help="where run folders go (default ./runs)")
    parser.add_argument("--run-id", help="name of the run folder (default: time + config hash)")
    parser.add_argument(
        "--channel",
        dest="train_channel",
        metavar="CHANNEL",
        help="the channel whose champion this model must beat (default: the config's "
        "train.channel)",
    )
    parser.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="train although the last 'recyclops setup' could not fetch everything",
    )
    add_train_flags(parser, skip=frozenset({"channel"}))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads
    from ..train import train

    config = load_config(args)
    tc = train_config(args, config)
    store = store_from(args, config)
    result = train(
        tc,
        args.data,
        args.runs,
        run_id=args.run_id,
        verbose=2 if args.verbose else 0,
        store=store,
        allow_incomplete=args.allow_incomplete,
    )
    print(f"run: {result.run_dir}")
    print(result.verdict.summary)
    if not result.blessed:
        print("this run will not be published (exit 3)")
        return EXIT_NOT_BLESSED
    print(f"publish with: recyclops publish {result.run_dir} --channel {tc.channel}")
    return 0
