"""Where objects live: a folder (the embedded default) or an S3 bucket."""

from pydantic import Field

from .base import StrictModel


class StoreConfig(StrictModel):
    """Credentials never live here: boto3's standard chain or $CREDENTIALS_DIRECTORY."""

    url: str = Field(
        "file://./recyclops-store",
        title="Store URL",
        description="file:///path/to/folder or s3://bucket/prefix",
        min_length=8,
    )
    endpoint_url: str | None = Field(
        None, title="S3 endpoint", description="For non-AWS S3 servers (SeaweedFS, MinIO)."
    )
    region: str | None = Field(None, title="S3 region")
    max_attempts: int = Field(5, ge=1, le=20, title="Attempts per S3 request")
    connect_timeout: float = Field(5.0, gt=0, le=120, title="S3 connect timeout (s)")
    read_timeout: float = Field(30.0, gt=0, le=600, title="S3 read timeout (s)")
