"""``recyclops demo``: the whole loop on this machine."""

import argparse
from pathlib import Path

from recyclops.shared.commands import AddCommon

HELP = "run the whole loop on this machine"


def configure(parser: argparse.ArgumentParser, add_common: AddCommon) -> None:
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path("build/demo"),
        help="where the store, data set, runs and edge state go (wiped first)",
    )
    parser.add_argument(
        "--weights",
        choices=["imagenet", "none"],
        default="imagenet",
        help="imagenet: the file shipped with recyclops (or the Keras cache); none: random "
        "weights, which the blessing refuses",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the bin")
    add_common(parser, config=False)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """0 when the loop ran and the bin classified; 1 when the model was not blessed."""
    from .report import NotBlessed
    from .runner import DemoOptions, run_demo

    opts = DemoOptions(
        args.workdir, weights=args.weights, timeout=args.timeout, quiet=not args.verbose
    )
    try:
        run_demo(opts)
    except NotBlessed:
        return 1  # the demo has said why, in its own words
    return 0
