"""``recyclops publish RUN_DIR``: check, upload, point the channel, notify the fleet."""

import argparse
import logging

from ...shared.commands import AddCommon
from .common import add_store, load_config, store_from

HELP = "upload a blessed model and notify the fleet"
logger = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser, add_common: AddCommon) -> None:
    add_common(parser)
    add_store(parser)
    parser.add_argument(
        "run_dir", metavar="RUN_DIR", help="a run folder written by 'recyclops train'"
    )
    parser.add_argument(
        "--channel", help="channel to point at it (default: the config's train.channel)"
    )
    parser.add_argument("--no-notify", action="store_true", help="skip the MQTT notice")
    parser.add_argument(
        "--force",
        metavar="REASON",
        help="publish although the run is not blessed (a human override; the reason is "
        "recorded in the manifest). Never skips the checks of the model file itself.",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..publish import publish

    config = load_config(args)
    store = store_from(args, config)
    channel = args.channel or config.train.channel
    mqtt = None if args.no_notify or not config.mqtt.host else config.mqtt
    manifest = publish(args.run_dir, store, mqtt, channel, force=args.force)
    print(f"published {manifest.version} to channel {channel!r} in {store.url}")
    return 0
