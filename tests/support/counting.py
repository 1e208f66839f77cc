"""A store wrapper that counts requests the way S3 bills them (a LIST answers 1,000 keys)."""

import builtins
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from recyclops.shared.store import ObjectStore

PAGE = 1000


class CountingStore(ObjectStore):
    """Delegates to ``inner``; ``counts`` holds GET, PUT, DELETE and LIST (pages) made.
    ``before_get(key)`` runs before every GET (a test can change the store in between)."""

    def __init__(self, inner: ObjectStore, before_get: Callable[[str], None] | None = None):
        self.inner = inner
        self.url = inner.url
        self.counts: Counter[str] = Counter()
        self.before_get = before_get
        self._lock = threading.Lock()

    def _count(self, what: str, n: int = 1) -> None:
        with self._lock:
            self.counts[what] += n

    def _pages(self, keys: Iterator[str]) -> Iterator[str]:
        n = 0
        for n, key in enumerate(keys, 1):  # noqa: B007 - n is the count afterwards
            yield key
        self._count("LIST", max(1, -(-n // PAGE)))

    def reset(self) -> None:
        self.counts.clear()

    def put(self, key: str, data: bytes | Path, *, if_absent: bool = False) -> bool:
        self._count("PUT")
        return self.inner.put(key, data, if_absent=if_absent)

    def get(self, key: str) -> bytes:
        if self.before_get is not None:
            self.before_get(key)
        self._count("GET")
        return self.inner.get(key)

    def exists(self, key: str) -> bool:
        self._count("HEAD")
        return self.inner.exists(key)

    def size(self, key: str) -> int:
        self._count("HEAD")
        return self.inner.size(key)

    def list(self, prefix: str = "") -> Iterator[str]:
        return self._pages(self.inner.list(prefix))

    def list_after(self, prefix: str, start_after: str) -> Iterator[str]:
        return self._pages(self.inner.list_after(prefix, start_after))

    def list_folders(self, prefix: str) -> builtins.list[str]:
        found = self.inner.list_folders(prefix)
        self._count("LIST", max(1, -(-len(found) // PAGE)))
        return found

    def delete(self, key: str) -> None:
        self._count("DELETE")
        self.inner.delete(key)

    def check_ready(self) -> None:
        self.inner.check_ready()
