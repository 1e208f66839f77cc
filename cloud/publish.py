"""``recyclops publish RUN_DIR``: upload a gated model, verify it, point the channel, notify.

Order matters: files (put only-if-absent, then read back and hash-checked), manifest, then
the channel pointer LAST, then the retained MQTT notice. A failure at any step before the
pointer leaves the channel on the old model; repeating a publish is harmless.
"""

import logging
from datetime import UTC, datetime
from pathlib import Path

from ..shared import layout, messages
from ..shared.config import MqttConfig
from ..shared.errors import RecyclopsError, StoreError
from ..shared.hashing import sha256_bytes
from ..shared.manifest import ChannelPointer, ModelManifest, parse_manifest
from ..shared.store import ObjectStore
from .evaluate import GATE_FILE, GateError, load_gate

logger = logging.getLogger(__name__)


class PublishError(RecyclopsError):
    """The model could not be published; the channel still points at the previous one."""


def _model_dir(run_dir: Path) -> Path:
    inner = run_dir / "model"
    return inner if (inner / layout.MANIFEST_FILE).is_file() else run_dir


def _upload(store: ObjectStore, key: str, data: bytes) -> str:
    """Put if absent; an existing object must be byte-identical (versions are immutable)."""
    written = store.put(key, data, if_absent=True)
    back = store.get(key)
    if sha256_bytes(back) != sha256_bytes(data):
        if written:
            raise PublishError(f"{key}: read-back does not match what was uploaded")
        raise PublishError(
            f"{key}: already exists with different content; versions are never overwritten"
        )
    return "uploaded" if written else "already there"


def publish(
    run_dir: str | Path,
    store: ObjectStore,
    mqtt_config: MqttConfig | None = None,
    channel: str = "stable",
    *,
    force: bool = False,
    notify_timeout: float = 10.0,
) -> ModelManifest:
    """Publish the run's model to ``channel``. Refuses a run whose quality gate failed
    (``force`` overrides, for a human who has read why)."""
    run_dir = Path(run_dir)
    if run_dir.name == "model" and (run_dir.parent / GATE_FILE).exists():
        run_dir = run_dir.parent  # pointed at run/model: the gate lives one level up
    folder = _model_dir(run_dir)
    if not (folder / layout.MANIFEST_FILE).is_file():
        raise PublishError(
            f"{run_dir}: no {layout.MANIFEST_FILE} here or in model/; "
            "expected a run folder written by 'recyclops train'"
        )
    # Every publish needs a gate verdict (GateError when gate.json is missing): a model
    # nobody evaluated is as unsafe as one that failed. ``force`` is the human override.
    gate = load_gate(run_dir) if not force or (run_dir / GATE_FILE).exists() else {}
    if not gate.get("passed", False) and not force:
        raise GateError(
            f"{run_dir}: the quality gate failed, not publishing: "
            + "; ".join(gate.get("reasons", []))
        )
    raw_manifest = (folder / layout.MANIFEST_FILE).read_bytes()
    manifest = parse_manifest(raw_manifest, str(folder / layout.MANIFEST_FILE))
    manifest.verify_folder(folder)
    try:
        for entry in manifest.files:
            status = _upload(
                store,
                layout.model_file_key(manifest.version, entry.name),
                (folder / entry.name).read_bytes(),
            )
            logger.info("%s: %s", entry.name, status)
        mkey = layout.manifest_key(manifest.version)
        _upload(store, mkey, raw_manifest)
        pointer = ChannelPointer(
            channel=channel,
            version=manifest.version,
            manifest_key=mkey,
            manifest_sha256=sha256_bytes(raw_manifest),
            published_at=datetime.now(UTC),
        )
        store.put(layout.channel_key(channel), pointer.model_dump_json(indent=1).encode())
    except StoreError as exc:
        raise PublishError(f"upload failed, channel {channel!r} unchanged: {exc}") from exc
    logger.info("channel %s now points at %s", channel, manifest.version)
    if mqtt_config is not None and mqtt_config.host:
        notify(mqtt_config, pointer, notify_timeout)
    return manifest


def notify(config: MqttConfig, pointer: ChannelPointer, timeout: float = 10.0) -> None:
    """The retained notice; a broker that is down is a warning (devices also poll)."""
    from ..shared.mqtt import MqttClient, MqttError

    notice = messages.ModelNotice(
        channel=pointer.channel,
        version=pointer.version,
        manifest_key=pointer.manifest_key,
        manifest_sha256=pointer.manifest_sha256,
        published_at=pointer.published_at,
    )
    topic = messages.model_topic(config.fleet, pointer.channel)
    try:
        client = MqttClient(config)
        try:
            if not client.start(wait=timeout):
                logger.warning(
                    "MQTT broker %s:%s unreachable; devices will find the model by polling",
                    config.host,
                    config.port,
                )
                return
            if not client.publish(topic, notice, retain=True, wait=timeout):
                logger.warning("MQTT notice on %s not acknowledged; devices will poll", topic)
                return
        finally:
            client.stop()
    except MqttError as exc:
        logger.warning("MQTT notice not sent (%s); devices will poll", exc)
        return
    logger.info("notice retained on %s", topic)
