"""``recyclops promote --from canary --to stable``: move a model on the fleet's evidence.

Exit codes: 0 promoted (or the target already serves it), 3 refused for evidence (like
``train`` when not blessed: nothing is wrong, the canary has not proved itself yet), 1
errors."""

import argparse
import logging

from ...shared.commands import AddCommon
from ...shared.config import Flag, RecyclopsConfig, from_args, load
from .common import STORE_FLAGS, add_store, store_from

HELP = "promote a canary channel's model to stable, on telemetry evidence"
logger = logging.getLogger(__name__)
EXIT_REFUSED = 3

#: The [rollout] settings a flag may override.
ROLLOUT_FLAGS = (
    Flag("source", "rollout.canary", "--from"),
    Flag("target", "rollout.target", "--to"),
    Flag("since_days", "rollout.since_days", "--since"),
    Flag("min_items", "rollout.min_frames", "--min-items"),
    Flag("min_presses", "rollout.min_presses", "--min-presses"),
    Flag("significance", "rollout.significance", "--significance"),
)


def load_rollout_config(args: argparse.Namespace) -> RecyclopsConfig:
    """The file, the environment, then the store and [rollout] flags given."""
    return load(getattr(args, "config", None), flags=from_args(args, STORE_FLAGS + ROLLOUT_FLAGS))


def add_window(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since",
        dest="since_days",
        type=int,
        metavar="DAYS",
        help="days of telemetry compared (default: the config's rollout.since_days)",
    )
    parser.add_argument(
        "--significance",
        type=float,
        metavar="P",
        help="one-sided significance of 'worse' (default: rollout.significance)",
    )
    parser.add_argument("--no-notify", action="store_true", help="skip the MQTT notice")


def configure(parser: argparse.ArgumentParser, add_common: AddCommon) -> None:
    add_common(parser)
    add_store(parser)
    parser.add_argument(
        "--from", dest="source", metavar="CHANNEL", help="canary channel (rollout.canary)"
    )
    parser.add_argument(
        "--to", dest="target", metavar="CHANNEL", help="channel to promote to (rollout.target)"
    )
    parser.add_argument(
        "--min-items",
        type=int,
        metavar="N",
        help="classified frames each side needs (default: rollout.min_frames)",
    )
    parser.add_argument(
        "--min-presses",
        type=int,
        metavar="M",
        help="operator presses with a prediction each side needs (rollout.min_presses)",
    )
    add_window(parser)
    parser.add_argument(
        "--dry-run", action="store_true", help="print the evidence and the decision only"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..promote import judge, promote

    config = load_rollout_config(args)
    store = store_from(args, config)
    evidence = judge(store, config.rollout)
    c, t = evidence.canary, evidence.target
    for line in evidence.lines():
        print(f"  {line}")
    if c.version == t.version:
        print(f"{t.channel!r} already serves {c.version}: nothing to promote")
        return 0
    if not evidence.sufficient:
        print(f"not promoting {c.version} to {t.channel!r}:")
        for reason in evidence.missing:
            print(f"  - {reason}")
        return EXIT_REFUSED
    if args.dry_run:
        print(f"the evidence holds: {c.version} may be promoted to {t.channel!r} (dry run)")
        return 0
    mqtt = None if args.no_notify or not config.mqtt.host else config.mqtt
    pointer = promote(store, evidence, mqtt)
    print(
        f"channel {t.channel!r} now serves {pointer.version} (generation {pointer.generation}, "
        f"promoted from {c.channel!r}) in {store.url}"
    )
    return 0
