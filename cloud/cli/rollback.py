"""``recyclops rollback --channel C --to VERSION``: a deliberate, recorded step back."""

import argparse
import logging

from ...shared.commands import AddCommon
from .common import add_store, load_config, store_from

HELP = "point a channel back at an older model"
logger = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser, add_common: AddCommon) -> None:
    add_common(parser)
    add_store(parser)
    parser.add_argument("--channel", help="the channel (default: the config's train.channel)")
    parser.add_argument(
        "--to", required=True, metavar="VERSION", help="a version that served this channel"
    )
    parser.add_argument("--note", help="why (kept in the channel's history)")
    parser.add_argument("--no-notify", action="store_true", help="skip the MQTT notice")
    parser.add_argument("--list", action="store_true", help="print the channel's history first")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..channels import history
    from ..publish import rollback

    config = load_config(args)
    store = store_from(args, config)
    channel = args.channel or config.train.channel
    if args.list:
        for p in history(store, channel):
            print(
                f"  generation {p.generation}: {p.version} "
                f"({p.action}, {p.published_at:%Y-%m-%d %H:%M})"
            )
    mqtt = None if args.no_notify or not config.mqtt.host else config.mqtt
    pointer = rollback(store, channel, args.to, mqtt, note=args.note)
    print(
        f"channel {channel!r} now serves {pointer.version} again "
        f"(generation {pointer.generation}) in {store.url}"
    )
    return 0
