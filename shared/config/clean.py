"""The review tool's settings."""

from pydantic import Field

from .base import StrictModel


class CleanConfig(StrictModel):
    """The token is a secret: RECYCLOPS_CLEAN_TOKEN or $CREDENTIALS_DIRECTORY/clean_token."""

    host: str = Field("127.0.0.1", min_length=1, max_length=255, title="Bind address")
    port: int = Field(8080, ge=0, le=65535, title="Port")
    flush_seconds: float = Field(2.0, gt=0, le=60, title="Journal flush interval (s)")
    flush_min_seconds: float = Field(
        0.5,
        ge=0,
        le=60,
        title="Least time between journal writes (s)",
        description="A decision wakes the flusher at once; writes are at most this often.",
    )
    reviewer: str = Field(
        "",
        max_length=24,
        pattern=r"^[A-Za-z0-9._-]*$",
        title="Reviewer name",
        description="Goes into the session id; default: the login name.",
    )
    include_decided: bool = Field(False, title="Show images already decided in other sessions")
    presign: bool = Field(
        False,
        title="Serve images by redirect to presigned S3 URLs",
        description="The browser must reach the S3 endpoint; otherwise images go through the app.",
    )
    refresh_seconds: float = Field(
        30.0,
        ge=0,
        le=3600,
        title="Re-read other sessions' decisions every (s); 0: never",
    )
    load_workers: int = Field(16, ge=1, le=64, title="Parallel reads when loading the queue")
    idle_timeout: float = Field(
        30.0,
        gt=0,
        le=3600,
        title="Idle connection timeout (s)",
        description="A keep-alive connection silent this long is closed and frees its thread.",
    )
    tls_cert: str | None = Field(
        None,
        min_length=1,
        title="TLS certificate (PEM chain) file",
        description="With tls_key, serve HTTPS; advised for any non-loopback bind.",
    )
    tls_key: str | None = Field(
        None,
        min_length=1,
        title="TLS private key (PEM) file",
        description="A path, not the key: the file stays out of the config.",
    )
    session_hours: float = Field(12.0, gt=0, le=24 * 30, title="A browser login lasts (hours)")
    login_attempts: int = Field(
        10, ge=1, le=1000, title="Wrong tokens allowed per client address per minute"
    )
