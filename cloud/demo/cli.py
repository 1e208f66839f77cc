"""``recyclops demo``: the whole loop on this machine."""

import argparse
from pathlib import Path

from recyclops.shared.cli import add_common

HELP = "run the whole loop on this machine"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path("build/demo"),
        help="where the store, data set, runs and edge state go (wiped first)",
    )
    parser.add_argument(
        "--weights",
        choices=["auto", "imagenet", "none"],
        default="auto",
        help="auto: ImageNet when in the Keras cache, else random (with a message)",
    )
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="the smallest path (random weights, tiny input), as CI runs it",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the bin")
    add_common(parser, config=False)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .runner import DemoOptions, run_demo

    run_demo(DemoOptions(args.workdir, weights=args.weights, tiny=args.tiny, timeout=args.timeout))
    return 0
