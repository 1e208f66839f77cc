"""`recyclops rollback` moves a running bin back: a new, higher generation, announced over a
real broker, read from a real S3 store, re-verified by the bin."""

from collections.abc import Callable
from typing import Any

from edge_helpers import Events, on_s3_and_mqtt, publish_model, start, status, wait_for

from recyclops.cloud.channels import advance, history
from recyclops.cloud.publish import notify, rollback
from recyclops.edge.daemon import EdgeDaemon
from recyclops.shared.config import MqttConfig, RecyclopsConfig
from recyclops.shared.store import S3Store


def test_rollback_moves_a_running_bin_back_with_a_higher_generation(
    make_config: Callable[..., RecyclopsConfig],
    s3_server: Any,
    s3_url: str,
    s3_store: S3Store,
    mqtt_config: MqttConfig,
) -> None:
    config = on_s3_and_mqtt(
        make_config(updates={"poll_seconds_connected": 600}), s3_server, s3_url, mqtt_config
    )
    pointers = {}
    for version in ("v1", "v2"):  # published the way `recyclops publish` moves a channel
        notice = publish_model(s3_store, version, pointer=False)
        pointers[version] = advance(
            s3_store, "stable", version=version, manifest_sha256=notice.manifest_sha256
        )
    notify(mqtt_config, pointers["v2"])
    events = Events()
    daemon = EdgeDaemon(config, events=events)
    thread = start(daemon)
    try:
        snap = wait_for(lambda: (s := status(config)).get("served_generation") == 2 and s)
        assert snap["model_version"] == "v2"

        pointer = rollback(s3_store, "stable", "v1", mqtt_config, note="v2 misreads glass")
        assert (pointer.version, pointer.generation, pointer.action) == ("v1", 3, "rollback")
        # the repo records the generation when it installs, the frame loop serves the model at
        # its next frame, and status.json is rewritten on the housekeeper's clock: wait for a
        # status written after the switch
        snap = wait_for(
            lambda: (
                (s := status(config)).get("served_generation") == 3
                and s.get("model_version") == "v1"
                and s
            )
        )
        assert daemon.repo.current_version() == "v1"
        assert [e["version"] for e in events.of("model")][-2:] == ["v2", "v1"]
    finally:
        daemon.stop.set()
        thread.join(20)
    assert not thread.is_alive()
    assert [p.generation for p in history(s3_store, "stable")] == [1, 2, 3]
