"""A folder as an object store: the embedded default, and what the demo runs on."""

import builtins
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from ..atomic import atomic_create_bytes, atomic_write_bytes
from ..errors import InvalidKeyError, ObjectNotFoundError, StoreError, StoreNotFoundError
from .base import ObjectStore, validate_key, validate_prefix

_PATH_MAX = 4000  # Linux PATH_MAX is 4096, less room for a temporary name


class LocalStore(ObjectStore):
    """Every write is temporary file + fsync + rename; "if absent" uses a hard link."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).absolute()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create store folder {self.root}: {exc}") from exc
        self.url = f"file://{self.root}"

    def _path(self, key: str) -> Path:
        path = self.root / validate_key(key)
        if len(os.fsencode(path)) > _PATH_MAX:
            raise InvalidKeyError(f"{self.url}: key {key[:80]!r}… makes a path that is too long")
        return path

    def check_ready(self) -> None:
        """The folder must still be there and be a folder we can write."""
        if not self.root.is_dir():
            raise StoreNotFoundError(f"{self.url}: the store folder {self.root} does not exist")
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StoreError(f"{self.url}: the store folder {self.root} is not writable")

    def put(self, key: str, data: bytes | Path, *, if_absent: bool = False) -> bool:
        path = self._path(key)
        body = Path(data).read_bytes() if isinstance(data, Path) else data
        try:
            if if_absent:
                return atomic_create_bytes(path, body)
            atomic_write_bytes(path, body)
            return True
        except OSError as exc:
            raise StoreError(f"{self.url}: cannot write {key}: {exc}") from exc

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFoundError(f"{self.url}: no object {key}") from None
        except OSError as exc:
            raise StoreError(f"{self.url}: cannot read {key}: {exc}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise ObjectNotFoundError(f"{self.url}: no object {key}") from None

    def list(self, prefix: str = "") -> Iterator[str]:
        validate_prefix(prefix)
        head, _, _ = prefix.rpartition("/")
        start = self.root / head if head else self.root
        if not start.is_dir():
            return
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.startswith("."):  # temporary files of writes in progress
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        yield from sorted(keys)

    def folders(self, prefix: str) -> builtins.list[str]:
        validate_prefix(prefix)
        if not prefix.endswith("/"):
            return super().folders(prefix)
        start = self.root / prefix
        if not start.is_dir():
            return []
        return sorted(d.name for d in start.iterdir() if d.is_dir() and not d.name.startswith("."))

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def presigned_url(self, key: str, expires: int = 3600) -> str | None:
        return self._path(key).as_uri()
