"""MQTT for the edge: retained status (last will "offline"), periodic stats, events, quality
reports, and the model notice subscription. Without a broker every call here is a no-op."""

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..shared import messages
from ..shared.config import RecyclopsConfig
from ..shared.errors import RecyclopsError
from ..shared.messages import DeviceEvent, DeviceQuality, DeviceStats, DeviceStatus
from ..shared.version import __version__

logger = logging.getLogger(__name__)


class Telemetry:
    def __init__(self, config: RecyclopsConfig) -> None:
        self.mqtt_config = config.mqtt
        self.device = config.edge.device_id
        self.fleet = config.mqtt.fleet
        self.channel = config.edge.channel
        self.client: Any = None
        self._last_status: tuple[str, str | None, str | None] | None = None

    @property
    def connected(self) -> bool:
        return bool(self.client and self.client.connected)

    def start(self, on_notice: Callable[[str, bytes], None]) -> None:
        if not self.mqtt_config.host:
            logger.info("no MQTT broker configured: model updates by polling the store")
            return
        from ..shared.mqtt import MqttClient

        topic = messages.status_topic(self.fleet, self.device)
        will = DeviceStatus(device=self.device, state="offline")
        try:
            self.client = MqttClient(
                self.mqtt_config, f"recyclops-edge-{self.device}", will=(topic, will)
            )
            self.client.subscribe(messages.model_topic(self.fleet, self.channel), on_notice)
            self.client.on_connected(self._restate)
            self.client.start(wait=self.mqtt_config.connect_timeout)
        except RecyclopsError as exc:
            logger.warning("MQTT unavailable (%s): polling the store instead", exc)

    def _restate(self) -> None:
        """After a reconnect the broker holds our last will ("offline"): say where we are."""
        if self._last_status is not None:
            self.status(*self._last_status)

    def status(self, state: str, model_version: str | None, detail: str | None = None) -> None:
        if not self.client:
            return
        self._last_status = (state, model_version, detail)
        msg = DeviceStatus(
            device=self.device,
            state=state,
            time=datetime.now(UTC),
            software_version=__version__,
            model_version=model_version,
            detail=detail[:1024] if detail else None,
        )
        self.client.publish(messages.status_topic(self.fleet, self.device), msg, retain=True)

    def stats(self, snapshot: dict[str, Any], spool_depth: int) -> None:
        if not self.client:
            return
        msg = DeviceStats(
            device=self.device,
            time=datetime.now(UTC),
            fps=snapshot["fps"],
            inference_ms=snapshot["inference_ms"],
            counts=snapshot["counts"],
            spool_depth=spool_depth,
            model_version=snapshot["model_version"],
            rss_mb=snapshot["rss_mb"],
        )
        self.client.publish(messages.stats_topic(self.fleet, self.device), msg)

    def quality(self, report: DeviceQuality) -> None:
        """One telemetry period (the same record the store gets, through the spool)."""
        if not self.client:
            return
        self.client.publish(messages.quality_topic(self.fleet, self.device), report)

    def event(self, kind: str, **fields: Any) -> None:
        if not self.client:
            return
        detail = fields.pop("detail", None)
        msg = DeviceEvent(
            device=self.device,
            time=datetime.now(UTC),
            kind=kind,
            detail=detail[:1024] if detail else None,
            **fields,
        )
        self.client.publish(messages.events_topic(self.fleet, self.device), msg)

    def stop(self, model_version: str | None) -> None:
        if not self.client:
            return
        try:
            self.client.publish(
                messages.status_topic(self.fleet, self.device),
                DeviceStatus(
                    device=self.device,
                    state="offline",
                    time=datetime.now(UTC),
                    model_version=model_version,
                ),
                retain=True,
                wait=2.0,
            )
        finally:
            self.client.stop()
