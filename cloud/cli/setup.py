"""``recyclops setup``: mirror the verified images (and optionally a model) from the store."""

import argparse
import logging
import sys

from ...shared.commands import AddCommon
from .common import add_store, load_config, store_from

HELP = "sync verified images (and a model) from the store"
logger = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser, add_common: AddCommon) -> None:
    add_common(parser)
    add_store(parser)
    parser.add_argument("--out", default="data", help="data set folder (default ./data)")
    parser.add_argument("--workers", type=int, default=8, help="parallel downloads (default 8)")
    parser.add_argument(
        "--model", metavar="CHANNEL", help="also download the channel's current model"
    )
    parser.add_argument(
        "--models-dir", default="models", help="where --model goes (default ./models)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..setup import download_model, sync_dataset

    config = load_config(args)
    store = store_from(args, config)
    summary = sync_dataset(
        store,
        args.out,
        config.category_names,
        workers=args.workers,
        progress=not args.no_progress and not args.quiet,
    )
    print("\n".join(summary.lines()))
    if not summary.complete:
        # Exit non-zero: a job chain (setup && train && publish) must not go on with a
        # fraction of the data. Re-running resumes where this one stopped.
        logger.error("the sync is incomplete; dataset.json records why. Re-run to resume.")
        print(f"recyclops: error: sync incomplete: {summary.incomplete_reason}", file=sys.stderr)
        return 1
    if args.model:
        manifest, folder = download_model(store, args.model, args.models_dir)
        print(f"model {manifest.version} ({args.model}) verified in {folder}")
    return 0
