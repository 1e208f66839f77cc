"""After a network drop the broker publishes the bin's last will ("offline"); when the bin
reconnects it must say "online" again, not stay offline until the next model switch."""

from support.waiting import wait_until

from recyclops.edge.telemetry import Telemetry
from recyclops.shared.config import MqttConfig, RecyclopsConfig
from recyclops.shared.messages import DeviceStatus, parse_message, status_topic
from recyclops.shared.mqtt import MqttClient


def test_status_is_restated_online_after_a_drop(mqtt_config: MqttConfig) -> None:
    config = RecyclopsConfig(mqtt=mqtt_config, edge={"device_id": "bin-rc"})  # type: ignore[arg-type]
    seen: list[str] = []

    def watch(_topic: str, payload: bytes) -> None:
        seen.append(parse_message(DeviceStatus, payload).state)

    watcher = MqttClient(mqtt_config)
    watcher.subscribe(status_topic(mqtt_config.fleet, "bin-rc"), watch)
    assert watcher.start(wait=10)
    telemetry = Telemetry(config)
    telemetry.start(lambda _t, _p: None)
    try:
        telemetry.status("online", "v7")
        wait_until(lambda: seen[-1:] == ["online"], 10, "online")
        telemetry.client._client._sock.close()  # the network goes away under the bin
        wait_until(lambda: "offline" in seen, 30, "the last will (offline)")
        wait_until(lambda: seen[-1] == "online", 40, "online again after the drop")
    finally:
        telemetry.stop("v7")
        watcher.stop()
