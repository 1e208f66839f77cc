"""The object store interface: one contract, a folder and an S3 implementation."""

import abc
import builtins
import re
from collections.abc import Iterator
from pathlib import Path

from ..errors import InvalidKeyError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: S3 allows 1024 bytes for a whole key, the bucket prefix included. A key may use 768 of
#: them and an S3 store's prefix at most 255 (+ "/"), so whether a key is valid never depends
#: on which store, or which prefix, it goes to.
MAX_KEY_BYTES = 768
MAX_PREFIX_BYTES = 255
S3_MAX_KEY_BYTES = 1024
#: A folder store turns each segment into a file name: Linux allows 255 bytes, and an atomic
#: write's temporary file adds ``.`` + ``.XXXXXXXX.tmp`` (14 bytes) to the last one. One rule
#: for every segment, so a key valid here is valid in both stores.
MAX_SEGMENT_BYTES = 240


def validate_key(key: str) -> str:
    """Reject keys that could escape a folder, confuse a reader, or that one of the stores
    could not store or list (so both stores accept exactly the same keys); return the key."""
    if not isinstance(key, str) or not key:
        raise InvalidKeyError("object key must be a non-empty string")
    if _CONTROL.search(key):
        raise InvalidKeyError(f"object key {key!r} contains control characters")
    if key.startswith("/") or re.match(r"^[A-Za-z]:", key):
        raise InvalidKeyError(f"object key {key!r} must be relative, not absolute")
    if "\\" in key:
        raise InvalidKeyError(f"object key {key!r} contains a backslash")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidKeyError(f"object key {key[:80]!r} is not valid UTF-8") from None
    if size > MAX_KEY_BYTES:
        raise InvalidKeyError(f"object key is longer than {MAX_KEY_BYTES} bytes ({size})")
    parts = key.split("/")
    if any(p in ("..", ".") for p in parts):
        raise InvalidKeyError(f"object key {key!r} contains a '.' or '..' segment")
    if any(p == "" for p in parts[:-1]) or parts[-1] == "":
        raise InvalidKeyError(f"object key {key!r} has an empty segment")
    if any(p.startswith(".") for p in parts):
        # The folder store keeps its temporary files under dot names and never lists them.
        raise InvalidKeyError(f"object key {key[:120]!r} has a segment starting with '.'")
    long = [p for p in parts if len(p.encode("utf-8")) > MAX_SEGMENT_BYTES]
    if long:
        raise InvalidKeyError(
            f"object key {key[:80]!r}…: a segment is longer than {MAX_SEGMENT_BYTES} bytes"
        )
    return key


def validate_prefix(prefix: str) -> str:
    """A list prefix may be empty or end in '/'; otherwise it obeys the key rules."""
    if prefix == "":
        return prefix
    validate_key(prefix.rstrip("/") or "x")
    return prefix


class ObjectStore(abc.ABC):
    """Keys are '/'-separated relative paths (see ``recyclops.shared.layout``)."""

    url: str

    @abc.abstractmethod
    def put(self, key: str, data: bytes | Path, *, if_absent: bool = False) -> bool:
        """Store bytes or a file's content. With ``if_absent``, False if the key exists."""

    @abc.abstractmethod
    def get(self, key: str) -> bytes:
        """The object's bytes; ObjectNotFoundError if absent."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Every key starting with ``prefix``, in lexicographic order (all pages)."""

    def folders(self, prefix: str) -> builtins.list[str]:
        """The names one level below ``prefix`` (ending in ``/``) that hold keys, sorted:
        ``telemetry/`` gives the devices. Stores override this to read one level only (S3's
        delimiter, a directory listing); this fallback lists every key below. A folder whose
        keys were all deleted may still be named (SeaweedFS and the folder store keep it)."""
        validate_prefix(prefix)
        names = set()
        for key in self.list(prefix):
            head, sep, _ = key[len(prefix) :].partition("/")
            if sep:
                names.add(head)
        return sorted(names)

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the key; absent keys are not an error."""

    @abc.abstractmethod
    def size(self, key: str) -> int:
        """The object's size in bytes; ObjectNotFoundError if absent."""

    def get_file(self, key: str, path: str | Path) -> None:
        """Download to ``path`` atomically (readers never see a half file)."""
        from ..atomic import atomic_write_bytes

        atomic_write_bytes(path, self.get(key))

    def presigned_url(self, key: str, expires: int = 3600) -> str | None:
        """A time-limited GET URL, or None where the store has none."""
        return None

    def check_ready(self) -> None:  # noqa: B027 - a store that cannot be missing passes
        """Fail now, with a clear StoreError, if the store is not there (a mistyped bucket or
        folder) rather than later; some S3 servers create a bucket on the first write."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
