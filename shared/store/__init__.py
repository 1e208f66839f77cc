"""Object stores addressed by URL: ``file:///path`` or ``s3://bucket/prefix``."""

from pathlib import Path
from urllib.parse import unquote, urlparse

from ..config.store import StoreConfig
from ..errors import StoreError
from .base import ObjectStore, validate_key, validate_prefix
from .local import LocalStore
from .s3 import S3Store

__all__ = ["LocalStore", "ObjectStore", "S3Store", "open_store", "validate_key", "validate_prefix"]


def open_store(target: str | StoreConfig, *, endpoint_url: str | None = None) -> ObjectStore:
    """Open a store from a URL or a StoreConfig. Relative ``file://./x`` is relative to cwd."""
    if isinstance(target, str):
        try:
            config = StoreConfig(url=target, endpoint_url=endpoint_url)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise StoreError(
                f"store URL {target!r}: {exc.errors()[0]['msg'] if hasattr(exc, 'errors') else exc}"
            ) from None
    else:
        config = target
    url = config.url
    parsed = urlparse(url)
    if parsed.scheme == "file":
        path = unquote(parsed.netloc + parsed.path)
        if not path or (path == "/" and not parsed.path):
            raise StoreError(f"store URL {url!r} has no folder: use file:///abs/path")
        return LocalStore(Path(path))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise StoreError(f"store URL {url!r} has no bucket: use s3://bucket/prefix")
        if parsed.query or parsed.fragment:
            raise StoreError(f"store URL {url!r}: no query or fragment allowed")
        return S3Store(
            parsed.netloc,
            parsed.path.strip("/"),
            endpoint_url=config.endpoint_url,
            region=config.region,
            max_attempts=config.max_attempts,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
        )
    raise StoreError(f"store URL {url!r}: expected file:///path or s3://bucket/prefix")
