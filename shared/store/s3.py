"""S3 (AWS or any S3 server) as an object store, through boto3's standard credential chain."""

import builtins
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InvalidKeyError, ObjectNotFoundError, StoreError, StoreNotFoundError
from ..secrets import load_aws_credentials_from_directory
from .base import MAX_PREFIX_BYTES, S3_MAX_KEY_BYTES, ObjectStore, validate_key, validate_prefix

logger = logging.getLogger(__name__)

_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_NO_BUCKET = {"NoSuchBucket"}
_EXISTS = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}


class S3Store(ObjectStore):
    """``s3://bucket/prefix``; ``endpoint_url`` for SeaweedFS, MinIO and the like."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        max_attempts: int = 5,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        client: Any = None,
    ) -> None:
        import boto3
        from botocore.config import Config

        if not bucket:
            raise StoreError("s3 store URL needs a bucket: s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if self.prefix:
            validate_key(self.prefix)
            if len(self.prefix.encode("utf-8")) > MAX_PREFIX_BYTES:
                raise InvalidKeyError(
                    f"s3 store prefix {self.prefix[:60]!r}… is longer than {MAX_PREFIX_BYTES} bytes"
                )
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        config = Config(
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=32,
        )
        make_client: Any = boto3.client  # kwargs from a dict defeat boto3-stubs' overloads
        self.client = client or make_client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=config,
            **load_aws_credentials_from_directory(),
        )

    def _key(self, key: str) -> str:
        validate_key(key)
        full = f"{self.prefix}/{key}" if self.prefix else key
        assert len(full.encode("utf-8")) <= S3_MAX_KEY_BYTES  # by the two limits above
        return full

    def _fail(self, action: str, key: str, exc: Exception) -> StoreError:
        code = _code(exc)
        if code in _NO_BUCKET:
            return StoreNotFoundError(f"{self.url}: the bucket {self.bucket!r} does not exist")
        if code in _NOT_FOUND:
            return ObjectNotFoundError(f"{self.url}: no object {key}")
        return StoreError(f"{self.url}: {action} {key} failed: {exc}")

    def put(self, key: str, data: bytes | Path, *, if_absent: bool = False) -> bool:
        full = self._key(key)
        extra: dict[str, Any] = {"IfNoneMatch": "*"} if if_absent else {}
        try:
            body = Path(data).read_bytes() if isinstance(data, Path) else data
            self.client.put_object(Bucket=self.bucket, Key=full, Body=body, **extra)
            return True
        except Exception as exc:
            if if_absent and _code(exc) in _EXISTS:
                return False
            raise self._fail("put", key, exc) from exc

    def get(self, key: str) -> bytes:
        full = self._key(key)
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=full)
            return bytes(obj["Body"].read())
        except Exception as exc:
            raise self._fail("get", key, exc) from exc

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
            return True
        except ObjectNotFoundError:
            return False

    def size(self, key: str) -> int:
        full = self._key(key)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=full)
            return int(head["ContentLength"])
        except Exception as exc:
            raise self._fail("head", key, exc) from exc

    def list(self, prefix: str = "") -> Iterator[str]:
        validate_prefix(prefix)
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full
            )
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][strip:]
        except Exception as exc:
            raise self._fail("list", prefix or "(all)", exc) from exc

    def folders(self, prefix: str) -> builtins.list[str]:
        validate_prefix(prefix)
        if not prefix.endswith("/"):
            return super().folders(prefix)
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        names: set[str] = set()
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full, Delimiter="/"
            )
            for page in pages:
                for common in page.get("CommonPrefixes", []):
                    name = common["Prefix"][len(full) :].rstrip("/")
                    if name:
                        names.add(name)
        except Exception as exc:
            raise self._fail("list", prefix, exc) from exc
        return sorted(names)

    def delete(self, key: str) -> None:
        full = self._key(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=full)
        except Exception as exc:
            if _code(exc) not in _NOT_FOUND:
                raise self._fail("delete", key, exc) from exc

    def presigned_url(self, key: str, expires: int = 3600) -> str | None:
        full = self._key(key)
        try:
            return str(
                self.client.generate_presigned_url(
                    "get_object",
                    Params={"Bucket": self.bucket, "Key": full},
                    ExpiresIn=expires,
                )
            )
        except Exception as exc:
            raise self._fail("presign", key, exc) from exc

    def check_ready(self) -> None:
        """HeadBucket: a missing bucket is StoreNotFoundError, an unreachable server a
        StoreError. A 403 (a writer-only policy without ListBucket) cannot tell, so it passes
        with a warning: writes to a missing bucket still fail on AWS (NoSuchBucket)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            code = _code(exc)
            if code in _NO_BUCKET | {"404", "NotFound"}:
                raise StoreNotFoundError(
                    f"{self.url}: the bucket {self.bucket!r} does not exist (a typo in the "
                    "store URL? create it first; Recyclops never creates buckets)"
                ) from None
            if code in {"403", "AccessDenied", "Forbidden"}:
                logger.warning("%s: not allowed to check that the bucket exists", self.url)
                return
            raise StoreError(f"{self.url}: the store is not reachable: {exc}") from exc


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error", {})
        code = str(err.get("Code", ""))
        if code:
            return code
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return str(status or "")
    return ""
