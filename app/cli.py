"""The ``recyclops`` command. Each subcommand's module is imported only when it runs, so
``recyclops edge …`` never imports TensorFlow and ``recyclops --help`` imports almost nothing.

This is the top of the house: it may name every app, and no app imports it. A subcommand
module provides ``configure(parser, add_common)``, which adds its arguments (calling the
``add_common`` it is handed on each parser that runs something) and sets ``func``
(``func(args) -> int``) as a parser default.
"""

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from recyclops.shared.errors import RecyclopsError
from recyclops.shared.version import __version__

logger = logging.getLogger(__name__)

COMMANDS: dict[str, tuple[str, str]] = {
    "edge": ("recyclops.edge.cli", "the bin sorter daemon: run, classify"),
    "import": ("recyclops.cloud.cli.importer", "import a labelled data set into the store"),
    "setup": ("recyclops.cloud.cli.setup", "sync verified images (and a model) from the store"),
    "search": ("recyclops.cloud.cli.search", "hyperparameter grid search, logged to TensorBoard"),
    "train": ("recyclops.cloud.cli.train", "train, convert to int8, check it, write a model"),
    "evaluate": ("recyclops.cloud.cli.evaluate", "cross-validated int8 accuracy of a recipe"),
    "audit": ("recyclops.cloud.cli.audit", "likely label errors and near-duplicates, to the store"),
    "compact": ("recyclops.cloud.cli.compact", "seal finished days of gathered records (daily)"),
    "publish": ("recyclops.cloud.cli.publish", "upload a trained model and notify the fleet"),
    "rollback": ("recyclops.cloud.cli.rollback", "point a channel back at an older model"),
    "promote": ("recyclops.cloud.cli.promote", "promote a canary's model to stable on evidence"),
    "watch": ("recyclops.cloud.cli.watch", "roll a canary back when it serves worse than stable"),
    "clean": ("recyclops.console.cli", "review gathered labels in a browser"),
    "demo": ("recyclops.app.demo.cli", "run the whole loop on this machine"),
    "config": ("recyclops.shared.config_cli", "check a configuration file"),
}


def add_common(parser: argparse.ArgumentParser, config: bool = True) -> None:
    """Options every subcommand shares."""
    if config:
        parser.add_argument(
            "-c",
            "--config",
            metavar="FILE",
            default=os.environ.get("RECYCLOPS_CONFIG"),
            help="TOML configuration (default: $RECYCLOPS_CONFIG, else built-in defaults)",
        )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if verbose < 2:
        for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "PIL", "matplotlib", "h5py"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recyclops",
        description="Recyclops: a camera recycling sorter that learns from its operators.",
    )
    parser.add_argument("--version", action="version", version=f"recyclops {__version__}")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sub = subs.add_parser(name, help=help_text, description=help_text)
        if name == only:
            try:
                mod = importlib.import_module(module)
            except ModuleNotFoundError as exc:
                raise RecyclopsError(
                    f"'recyclops {name}' needs {exc.name!r}, which is not installed "
                    f"(pip install 'recyclops[{_extra(name)}]')"
                ) from None
            mod.configure(sub, add_common)
    return parser


def _extra(command: str) -> str:
    return {"edge": "edge", "clean": "clean", "config": "edge"}.get(command, "cloud")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    try:
        parser = build_parser(command if command in COMMANDS else None)
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 0 if not argv or command in COMMANDS else 2
        setup_logging(getattr(args, "verbose", 0), getattr(args, "quiet", False))
        return int(args.func(args) or 0)
    except RecyclopsError as exc:
        print(f"recyclops: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("recyclops: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
