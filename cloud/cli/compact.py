"""``recyclops compact``: seal finished days of gathered records into the store's index, so
opening the review queue reads what is new plus one object per device and month."""

import argparse
import logging

from ...shared.commands import AddCommon
from .common import add_store, load_config, store_from

HELP = "seal finished days of gathered records into the index (run daily)"
logger = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser, add_common: AddCommon) -> None:
    add_common(parser)
    add_store(parser)
    parser.add_argument("--workers", type=int, default=16, help="parallel reads (default 16)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ...shared.compact import compact_gathered

    config = load_config(args)
    store = store_from(args, config)
    store.check_ready()
    summary = compact_gathered(store, workers=args.workers)
    print("\n".join(summary.lines()))
    # a month that could not be read stays raw (readers still see it); re-run to seal it
    return 1 if summary.failures else 0
