"""The MQTT wrapper against a real mosquitto: retained notices, last will, bad payloads."""

import threading
from datetime import UTC, datetime

from recyclops.shared.config import MqttConfig
from recyclops.shared.manifest import ModelRef
from recyclops.shared.messages import (
    DeviceStatus,
    model_topic,
    parse_message,
    status_topic,
)
from recyclops.shared.mqtt import MqttClient


def collect(config: MqttConfig, topic: str) -> tuple[MqttClient, list[bytes], threading.Event]:
    got: list[bytes] = []
    event = threading.Event()

    def handler(_topic: str, payload: bytes) -> None:
        got.append(payload)
        event.set()

    client = MqttClient(config)
    client.subscribe(topic, handler)
    assert client.start(wait=10)
    return client, got, event


def test_retained_notice_reaches_a_late_subscriber(mqtt_config: MqttConfig) -> None:
    topic = model_topic(mqtt_config.fleet, "stable")
    notice = ModelRef(
        channel="stable",
        version="v1",
        manifest_key="models/v1/manifest.json",
        manifest_sha256="b" * 64,
        published_at=datetime.now(UTC),
    )
    pub = MqttClient(mqtt_config)
    assert pub.start(wait=10)
    assert pub.publish(topic, notice.notice_payload(), retain=True, wait=10)
    pub.stop()
    sub, got, event = collect(mqtt_config, topic)
    try:
        assert event.wait(10)
        assert parse_message(ModelRef, got[0]) == notice
    finally:
        sub.stop()


def test_last_will_marks_device_offline(mqtt_config: MqttConfig) -> None:
    topic = status_topic(mqtt_config.fleet, "bin-07")
    offline = DeviceStatus(device="bin-07", state="offline")
    device = MqttClient(mqtt_config, "bin-07", will=(topic, offline))
    assert device.start(wait=10)
    device.publish(topic, DeviceStatus(device="bin-07", state="online"), retain=True, wait=10)
    watcher, got, event = collect(mqtt_config, topic)
    try:
        assert event.wait(10)
        assert parse_message(DeviceStatus, got[-1]).state == "online"
        event.clear()
        device._client._sock.close()  # type: ignore[union-attr]  # an ungraceful drop
        device._client.loop_stop()
        assert event.wait(keepalive_bound(mqtt_config))
        assert parse_message(DeviceStatus, got[-1]).state == "offline"
    finally:
        watcher.stop()


def keepalive_bound(config: MqttConfig) -> float:
    return config.keepalive * 1.5 + 10


def test_a_handler_that_raises_does_not_stop_delivery(mqtt_config: MqttConfig) -> None:
    topic = f"recyclops/{mqtt_config.fleet}/test"
    got: list[bytes] = []
    done = threading.Event()

    def handler(_t: str, payload: bytes) -> None:
        if payload == b"bad":
            raise ValueError("handler blew up")
        got.append(payload)
        done.set()

    client = MqttClient(mqtt_config)
    client.subscribe(topic, handler)
    assert client.start(wait=10)
    try:
        client.publish(topic, b"bad", wait=10)
        client.publish(topic, b"good", wait=10)
        assert done.wait(10)
        assert got == [b"good"]
    finally:
        client.stop()


def test_unreachable_broker_does_not_raise_on_start() -> None:
    from support.devservers import free_port

    client = MqttClient(MqttConfig(host="127.0.0.1", port=free_port()))
    try:
        assert client.start(wait=1) is False
        assert not client.connected
    finally:
        client.stop()


def test_on_connected_hooks_run_after_every_reconnect(private_broker, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from support import devservers

    config = MqttConfig(host=private_broker.host, port=private_broker.port, fleet="reconnect")
    connects = threading.Semaphore(0)
    client = MqttClient(config)
    client.on_connected(connects.release)
    assert client.start(wait=10)
    try:
        assert connects.acquire(timeout=5)
        private_broker.stop()
        with devservers.mosquitto(tmp_path / "again", port=private_broker.port):
            assert connects.acquire(timeout=40)  # paho's reconnect delay is at most 30 s
    finally:
        client.stop()
