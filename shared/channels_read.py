"""Reading channels and model versions from the store, for anyone who only looks.

The writer (publish, rollback, promote) is ``rollout/channels.py``; the console's pages and
other tools that only look use this. Keys are
``layout``'s: ``models/<version>/manifest.json``, ``models/channels/<channel>.json`` (the
pointer bins read) and ``models/channels/<channel>/<generation>.json`` (the history, one
object per generation, never rewritten).
"""

from . import layout
from .errors import ManifestError, ObjectNotFoundError
from .manifest import ModelManifest, ModelRef, parse_manifest, parse_pointer
from .primitives import is_safe_segment
from .store import ObjectStore


def model_versions(store: ObjectStore) -> list[str]:
    """Every version with a manifest in the store, in key order."""
    out = []
    for key in store.list(layout.MODELS):
        if key.startswith(layout.CHANNELS):
            continue
        parts = key[len(layout.MODELS) :].split("/")
        if len(parts) == 2 and parts[1] == layout.MANIFEST_FILE:
            out.append(parts[0])
    return out


def read_manifest(store: ObjectStore, version: str) -> ModelManifest:
    """A version's manifest; ObjectNotFoundError when absent, ManifestError when invalid."""
    key = layout.manifest_key(version)
    return parse_manifest(store.get(key), key)


def channel_names(store: ObjectStore) -> list[str]:
    """Every channel with a pointer or a history, sorted."""
    names = set()
    for key in store.list(layout.CHANNELS):
        head, sep, _ = key[len(layout.CHANNELS) :].partition("/")
        name = head if sep else head.removesuffix(".json") if head.endswith(".json") else ""
        if is_safe_segment(name):
            names.add(name)
    return sorted(names)


def read_pointer(store: ObjectStore, channel: str) -> ModelRef | None:
    """The channel's current pointer, None for a channel never published to."""
    key = layout.channel_key(channel)
    try:
        raw = store.get(key)
    except ObjectNotFoundError:
        return None
    pointer = parse_pointer(raw, key)
    if pointer.channel != channel:
        raise ManifestError(f"{key}: names channel {pointer.channel!r}")
    return pointer


def history(store: ObjectStore, channel: str) -> list[ModelRef]:
    """Every generation the channel had, oldest first."""
    out = []
    for key in store.list(layout.channel_history_prefix(channel)):
        if layout.parse_generation_key(key) is None:
            continue
        out.append(parse_pointer(store.get(key), key))
    return sorted(out, key=lambda p: p.generation)
