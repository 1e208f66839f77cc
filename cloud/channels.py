"""Channel pointers with generations: what a channel serves, and its history.

The writer lives in ``shared/rollout/channels.py`` (the console moves channels too); this
is the cloud's name for it. ``advance`` reads the channel's latest generation here, then
claims the next one with a conditional put there: two publishers cannot both win.
"""

from typing import Literal

from ..shared.manifest import ModelRef
from ..shared.rollout.channels import ChannelError, claim, history, latest, read_pointer
from ..shared.store import ObjectStore

__all__ = ["ChannelError", "advance", "history", "latest", "read_pointer"]


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
) -> ModelRef:
    """Claim the next generation for ``version`` and point the channel at it
    (``shared.rollout.channels.advance``)."""
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
    )
