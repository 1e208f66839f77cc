"""The object store interface: one contract, a folder and an S3 implementation."""

import abc
import re
from collections.abc import Iterator
from pathlib import Path

from ..errors import InvalidKeyError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_KEY_BYTES = 1024


def validate_key(key: str) -> str:
    """Reject keys that could escape a folder or confuse a reader; return the key."""
    if not isinstance(key, str) or not key:
        raise InvalidKeyError("object key must be a non-empty string")
    if _CONTROL.search(key):
        raise InvalidKeyError(f"object key {key!r} contains control characters")
    if key.startswith("/") or re.match(r"^[A-Za-z]:", key):
        raise InvalidKeyError(f"object key {key!r} must be relative, not absolute")
    if "\\" in key:
        raise InvalidKeyError(f"object key {key!r} contains a backslash")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidKeyError(f"object key is longer than {MAX_KEY_BYTES} bytes")
    parts = key.split("/")
    if any(p in ("..", ".") for p in parts):
        raise InvalidKeyError(f"object key {key!r} contains a '.' or '..' segment")
    if any(p == "" for p in parts[:-1]) or parts[-1] == "":
        raise InvalidKeyError(f"object key {key!r} has an empty segment")
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

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
