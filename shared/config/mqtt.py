"""The MQTT broker; no host means no broker (the edge then polls the store)."""

from typing import Self

from pydantic import Field, model_validator

from ..primitives import SafeName
from .base import StrictModel


class MqttConfig(StrictModel):
    """Secrets mqtt_password, mqtt_client_key: $RECYCLOPS_<NAME> or $CREDENTIALS_DIRECTORY."""

    host: str | None = Field(None, title="Broker host", description="Empty: no broker.")
    port: int = Field(1883, ge=1, le=65535, title="Broker port")
    fleet: SafeName = Field("default", title="Fleet", description="Topic namespace.")
    username: str | None = Field(None, title="Username")
    tls: bool = Field(False, title="Use TLS")
    ca_file: str | None = Field(None, title="CA bundle for TLS")
    cert_file: str | None = Field(
        None,
        title="Client certificate (PEM)",
        description=(
            "Mutual TLS, one certificate per device (AWS IoT Core): its private key is the "
            "secret mqtt_client_key. Needs tls."
        ),
    )
    keepalive: int = Field(30, ge=5, le=3600, title="Keepalive (s)")
    connect_timeout: float = Field(5.0, gt=0, le=120, title="Connect timeout (s)")

    @model_validator(mode="after")
    def _cert_needs_tls(self) -> Self:
        if self.cert_file and not self.tls:
            raise ValueError("cert_file (a client certificate) needs tls = true")
        return self
