"""A bin tells the fleet over MQTT what it refused, ignored and captured, not just its log:
a refused key press, a replayed older model notice and an automatic capture each arrive
as a validated ``DeviceEvent`` on the device's events topic (real mosquitto)."""

from collections.abc import Callable

from edge_helpers import Events, notify, publish_model, start, status, wait_for

from recyclops.edge.daemon import EdgeDaemon
from recyclops.shared import messages
from recyclops.shared.config import MqttConfig, RecyclopsConfig
from recyclops.shared.messages import DeviceEvent
from recyclops.shared.mqtt import MqttClient
from recyclops.shared.store import open_store


def test_refusals_ignored_notices_and_captures_reach_the_fleet(
    make_config: Callable[..., RecyclopsConfig], mqtt_config: MqttConfig
) -> None:
    data = make_config(
        updates={"poll_seconds_connected": 600},
        capture={"min_score": 1.0, "per_hour": 100, "burst": 10},  # every frame is "unsure"
        keypad={"max_frame_age": 1e-6},  # every press finds its frame too old: refused
    ).model_dump()
    data["mqtt"] = mqtt_config.model_dump()
    config = RecyclopsConfig.model_validate(data)
    device = config.edge.device_id
    received: list[DeviceEvent] = []
    listener = MqttClient(mqtt_config)
    listener.subscribe(
        messages.events_topic(mqtt_config.fleet, device),
        lambda t, p: received.append(messages.parse_message(DeviceEvent, p, t)),
    )
    assert listener.start(wait=5)
    store = open_store(config.store)
    publish_model(store, "v1", generation=2)
    old = publish_model(store, "v0", generation=1, pointer=False)
    daemon = EdgeDaemon(config, events=Events())
    thread = start(daemon)

    def kinds() -> set[str]:
        return {e.kind for e in received}

    try:
        wait_for(lambda: status(config).get("served_generation") == 2)
        notify(listener, mqtt_config.fleet, old)  # a replay of an older notice
        wait_for(lambda: "notice_ignored" in kinds())
        wait_for(lambda: "auto_captured" in kinds())
        daemon.on_key("1")
        wait_for(lambda: "gather_refused" in kinds())
    finally:
        daemon.stop.set()
        thread.join(20)
        listener.stop()
    ignored = next(e for e in received if e.kind == "notice_ignored")
    assert ignored.model_version == "v0" and "generation 1 < served 2" in (ignored.detail or "")
    captured = next(e for e in received if e.kind == "auto_captured")
    assert captured.model_version == "v1" and captured.label
    assert "low_score" in (captured.detail or "")
    refused = next(e for e in received if e.kind == "gather_refused")
    assert refused.label == config.category_names[0]
    assert (refused.detail or "").startswith("stale_frame: the latest frame is")
