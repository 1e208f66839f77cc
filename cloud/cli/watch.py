"""``recyclops watch --channel canary --against stable [--once]``: halt a degrading canary.

Exit codes with ``--once``: 0 healthy, waiting for telemetry or nothing to compare; 3 the
canary was halted (rolled back: a systemd timer's unit shows as failed, so someone looks);
1 errors. Without ``--once`` it checks every ``rollout.watch_seconds`` until interrupted."""

import argparse
import logging
import time

from ...shared.commands import AddCommon
from ...shared.config import Flag, from_args, load
from .common import STORE_FLAGS, add_store, store_from
from .promote import ROLLOUT_FLAGS, add_window

HELP = "roll a canary channel back when its telemetry is worse than stable's"
logger = logging.getLogger(__name__)
EXIT_HALTED = 3

WATCH_FLAGS = (
    Flag("channel", "rollout.canary", "--channel"),
    Flag("against", "rollout.target", "--against"),
    Flag("margin", "rollout.halt_margin", "--margin"),
)


def configure(parser: argparse.ArgumentParser, add_common: AddCommon) -> None:
    add_common(parser)
    add_store(parser)
    parser.add_argument("--channel", metavar="CHANNEL", help="canary channel (rollout.canary)")
    parser.add_argument("--against", metavar="CHANNEL", help="reference channel (rollout.target)")
    parser.add_argument(
        "--margin",
        type=float,
        metavar="RATE",
        help="how much worse (absolute rate) halts the canary (rollout.halt_margin)",
    )
    add_window(parser)
    parser.add_argument("--once", action="store_true", help="check once and exit (for timers)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..watch import watch_once

    flags = STORE_FLAGS + tuple(
        f for f in ROLLOUT_FLAGS if f.dest in ("since_days", "significance")
    )
    config = load(getattr(args, "config", None), flags=from_args(args, flags + WATCH_FLAGS))
    store = store_from(args, config)
    mqtt = None if args.no_notify or not config.mqtt.host else config.mqtt
    while True:
        result = watch_once(store, config.rollout, mqtt_config=mqtt)
        for line in result.lines:
            print(f"  {line}")
        print(f"{config.rollout.canary}: {result.verdict}")
        if result.pointer is not None:
            print(
                f"channel {result.pointer.channel!r} rolled back to {result.pointer.version} "
                f"(generation {result.pointer.generation}): {'; '.join(result.reasons)}"
            )
        if args.once:
            return EXIT_HALTED if result.verdict == "halted" else 0
        time.sleep(config.rollout.watch_seconds)
