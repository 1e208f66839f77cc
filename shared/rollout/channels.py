"""Channel pointers with generations: what a channel serves, and its history.

``models/channels/<channel>.json`` is the pointer the bins read. Every change (publish or
rollback) first claims the next generation with a conditional put of
``models/channels/<channel>/<generation>.json``: two publishers cannot both claim the same
generation, so exactly one wins and the other is told to judge again. The pointer is then
overwritten, and if a later generation was claimed meanwhile, the pointer follows it, so it
always converges on the highest generation. The history objects are never rewritten: the
channel's past is in the store.
"""

import logging
from datetime import UTC, datetime
from typing import Literal

from .. import layout
from ..channels_read import history, read_pointer
from ..errors import RecyclopsError
from ..manifest import ModelRef, parse_pointer
from ..store import ObjectStore

logger = logging.getLogger(__name__)

__all__ = ["ChannelError", "advance", "claim", "history", "latest", "read_pointer"]


class ChannelError(RecyclopsError):
    """The channel could not be moved (another publisher won, or the target is unknown)."""


def latest(store: ObjectStore, channel: str) -> ModelRef | None:
    """The highest generation claimed, from the history (the pointer for older channels)."""
    gens = [
        (g, key)
        for key in store.list(layout.channel_history_prefix(channel))
        if (g := layout.parse_generation_key(key)) is not None
    ]
    pointer = read_pointer(store, channel)
    if gens:
        gen, key = max(gens)
        if pointer is None or gen >= pointer.generation:
            return parse_pointer(store.get(key), key)
    return pointer


def advance(
    store: ObjectStore,
    channel: str,
    *,
    version: str,
    manifest_sha256: str,
    action: Literal["publish", "rollback"] = "publish",
    note: str | None = None,
    expect_version: str | None = None,
    check_expected: bool = False,
    expect_generation: int | None = None,
) -> ModelRef:
    """Claim the next generation for ``version`` and point the channel at it.

    With ``check_expected``, the channel's latest generation must still name
    ``expect_version`` (None: nothing yet): the blessing was judged against that champion,
    and a publisher that lost a race finds the winner here. With ``expect_generation``, the
    channel must still be at that generation (what an operator confirmed), and only the one
    after it is claimed: of two operators who confirmed the same step, one wins.
    """
    return claim(
        store,
        channel,
        latest(store, channel),
        version=version,
        manifest_sha256=manifest_sha256,
        action=action,
        note=note,
        expect_version=expect_version,
        check_expected=check_expected,
        expect_generation=expect_generation,
    )


def claim(
    store: ObjectStore,
    channel: str,
    last: ModelRef | None,
    *,
    version: str,
    manifest_sha256: str,
    action: Literal["publish", "rollback"] = "publish",
    note: str | None = None,
    expect_version: str | None = None,
    check_expected: bool = False,
    expect_generation: int | None = None,
) -> ModelRef:
    """``advance`` once the channel's ``last`` generation has been read: the checks, the
    conditional put of the next generation, then the pointer."""
    seen = last.generation if last else 0
    if expect_generation is not None and seen != expect_generation:
        raise ChannelError(
            f"channel {channel!r} is at generation {seen} "
            f"({last.version if last else 'nothing'}), not {expect_generation} as confirmed: "
            "someone moved it meanwhile; nothing was changed (look again)"
        )
    if check_expected and (last.version if last else None) != expect_version:
        raise ChannelError(
            f"channel {channel!r} now serves {last.version if last else 'nothing'}, but this "
            f"model was judged against {expect_version or 'an empty channel'}: judge it again "
            "(re-run training) before publishing"
        )
    generation = seen + 1
    pointer = ModelRef(
        channel=channel,
        version=version,
        manifest_key=layout.manifest_key(version),
        manifest_sha256=manifest_sha256,
        published_at=datetime.now(UTC),
        generation=generation,
        action=action,
        note=note,
    )
    data = pointer.pointer_json()
    if not store.put(layout.channel_generation_key(channel, generation), data, if_absent=True):
        raise ChannelError(
            f"channel {channel!r}: another publisher claimed generation {generation} first; "
            "nothing was changed by this one (judge again against what it published)"
        )
    store.put(layout.channel_key(channel), data)
    newest = latest(store, channel)
    if newest is not None and newest.generation > generation:  # a later claim landed meanwhile
        store.put(layout.channel_key(channel), newest.pointer_json())
        logger.warning(
            "channel %s: generation %d superseded ours at once", channel, newest.generation
        )
    logger.info("channel %s: generation %d -> %s (%s)", channel, generation, version, action)
    return pointer
