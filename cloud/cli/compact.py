"""``recyclops compact``: seal finished days of gathered records into the store's index, so
opening the review queue reads what is new plus one object per device and month, and roll
each bin's closed days of quality telemetry into one object per day, so the fleet page,
``promote`` and ``watch`` read one object per bin-day instead of one per period."""

import argparse
import logging

from ...shared.commands import AddCommon
from .common import add_store, load_config, store_from

HELP = "seal finished days of gathered records and telemetry into the index (run daily)"
logger = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser, add_common: AddCommon) -> None:
    add_common(parser)
    add_store(parser)
    parser.add_argument("--workers", type=int, default=16, help="parallel reads (default 16)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ...shared.compact import compact_gathered
    from ...shared.telemetry_compact import compact_telemetry

    config = load_config(args)
    store = store_from(args, config)
    store.check_ready()
    summary = compact_gathered(store, workers=args.workers)
    print("\n".join(summary.lines()))
    telemetry = compact_telemetry(store, workers=args.workers)
    print("\n".join(telemetry.lines()))
    # a month or day that could not be read stays raw (readers still see it); re-run to seal it
    return 1 if summary.failures or telemetry.failures else 0
