"""The review tool's settings."""

from pydantic import Field

from .base import StrictModel


class CleanConfig(StrictModel):
    """The token is a secret: RECYCLOPS_CLEAN_TOKEN or $CREDENTIALS_DIRECTORY/clean_token."""

    host: str = Field("127.0.0.1", title="Bind address")
    port: int = Field(8080, ge=0, le=65535, title="Port")
    flush_seconds: float = Field(2.0, gt=0, le=60, title="Journal flush interval (s)")
