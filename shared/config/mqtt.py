"""The MQTT broker; no host means no broker (the edge then polls the store)."""

from pydantic import Field

from ..primitives import SafeName
from .base import StrictModel


class MqttConfig(StrictModel):
    """The password is a secret: RECYCLOPS_MQTT_PASSWORD or $CREDENTIALS_DIRECTORY/mqtt_password."""

    host: str | None = Field(None, title="Broker host", description="Empty: no broker.")
    port: int = Field(1883, ge=1, le=65535, title="Broker port")
    fleet: SafeName = Field("default", title="Fleet", description="Topic namespace.")
    username: str | None = Field(None, title="Username")
    tls: bool = Field(False, title="Use TLS")
    ca_file: str | None = Field(None, title="CA bundle for TLS")
    keepalive: int = Field(30, ge=5, le=3600, title="Keepalive (s)")
    connect_timeout: float = Field(5.0, gt=0, le=120, title="Connect timeout (s)")
