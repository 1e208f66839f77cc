"""Writing gathers and undos to the store so that retries never duplicate and nothing
pressed overwrites anything else.

A gather's identity is (device, sha256, captured_at). Its record goes to the first free
``gathered/<device>/<day>/<sha>[.<seq>].json``; a retry finds its own record (same capture
time) and stops there. An undo goes beside the record it names, with the same ``seq``.
"""

import logging

from pydantic import ValidationError

from . import layout
from .errors import ObjectNotFoundError, StoreError
from .records import GatheredRecord, GatheredUndo
from .store import ObjectStore

logger = logging.getLogger(__name__)

MAX_SEQ = 1000


def _captured_at(store: ObjectStore, key: str) -> object:
    try:
        return GatheredRecord.model_validate_json(store.get(key)).captured_at
    except ValidationError:
        return None  # an unreadable record is someone else's: never overwrite it


def store_gathered(store: ObjectStore, record: GatheredRecord, image: bytes | None = None) -> str:
    """Upload the image (content-addressed), then the record; returns the record's key."""
    if image is not None:
        store.put(layout.image_key(record.sha256), image, if_absent=True)
    body = record.model_dump_json().encode("utf-8")
    day = record.captured_at.date()
    for seq in range(1, MAX_SEQ + 1):
        key = layout.gathered_key(record.device, day, record.sha256, seq)
        if store.put(key, body, if_absent=True):
            return key
        if _captured_at(store, key) == record.captured_at:
            return key  # a retry of this very gather
    raise StoreError(f"{record.sha256[:12]}: more than {MAX_SEQ} gathers of one image in a day")


def find_gathered(store: ObjectStore, device: str, sha256: str, captured_at: object) -> str | None:
    """The key of the record this (device, sha, capture time) wrote, if it is in the store."""
    day = captured_at.date()  # type: ignore[attr-defined]
    for seq in range(1, MAX_SEQ + 1):
        key = layout.gathered_key(device, day, sha256, seq)
        try:
            if _captured_at(store, key) == captured_at:
                return key
        except ObjectNotFoundError:
            return None
    return None


def store_undo(store: ObjectStore, undo: GatheredUndo) -> str | None:
    """Write the tombstone beside its record; None (logged) if the record never arrived."""
    key = find_gathered(store, undo.device, undo.sha256, undo.captured_at)
    if key is None:
        logger.warning(
            "undo of %s: its record is not in the store; nothing to undo", undo.sha256[:12]
        )
        return None
    parsed = layout.parse_gathered_key(key)
    assert parsed is not None
    day = undo.captured_at.date()
    undo_key = layout.gathered_undo_key(undo.device, day, undo.sha256, parsed.seq)
    store.put(undo_key, undo.model_dump_json().encode("utf-8"), if_absent=True)
    return undo_key
