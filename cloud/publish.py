"""``recyclops publish RUN_DIR``: check a blessed model, upload it, point the channel, notify.

Before anything is uploaded: the verdict must be about these exact bytes and judged against
the model the channel serves now, and the file must load on LiteRT, keep its contract and
reproduce its golden outputs (``artefact.py``). Then order matters: files (put only-if-absent,
then read back and hash-checked), manifest, then the channel's next generation and pointer
LAST (``channels.py``), then the retained MQTT notice. A failure at any step before the
pointer leaves the channel on the old model; repeating a publish is harmless.
"""

import logging
from pathlib import Path
from typing import Any

from ..shared import layout, messages
from ..shared.atomic import atomic_write_bytes
from ..shared.config import MqttConfig
from ..shared.errors import RecyclopsError, StoreError
from ..shared.hashing import sha256_bytes, sha256_file
from ..shared.manifest import Blessing, ModelManifest, ModelRef, parse_manifest
from ..shared.store import ObjectStore
from .artefact import check_folder
from .blessing import GATE_FILE, load_verdict
from .channels import advance, latest
from .evaluate import GateError

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


def _check_verdict(run_dir: Path, model_sha: str, force: str | None) -> dict[str, Any]:
    """The run's verdict, bound to these exact bytes; {} when a human forces without one."""
    if force is not None and not (run_dir / GATE_FILE).exists():
        return {}
    verdict = load_verdict(run_dir)
    if verdict.get("model_sha256") != model_sha:
        if force is not None:
            logger.warning("the verdict in %s was written for other bytes (forced)", run_dir)
            return {}
        raise GateError(
            f"{run_dir / GATE_FILE} was written for model bytes "
            f"{str(verdict.get('model_sha256'))[:12]}…, but model.tflite is {model_sha[:12]}…: "
            "this verdict is not about this model"
        )
    if not verdict["blessed"] and force is None:
        raise GateError(
            f"{run_dir}: not blessed, not publishing: " + "; ".join(verdict.get("reasons", []))
        )
    return verdict


def publish(
    run_dir: str | Path,
    store: ObjectStore,
    mqtt_config: MqttConfig | None = None,
    channel: str = "stable",
    *,
    force: str | None = None,
    notify_timeout: float = 10.0,
) -> ModelManifest:
    """Publish the run's model to ``channel``: only a blessed run, judged against the model
    the channel serves now, whose file loads, keeps its contract and reproduces its golden
    outputs. ``force`` (a human's reason, recorded in the manifest) overrides the verdict,
    never the checks of the file itself."""
    run_dir = Path(run_dir)
    if run_dir.name == "model" and (run_dir.parent / GATE_FILE).exists():
        run_dir = run_dir.parent  # pointed at run/model: the verdict lives one level up
    folder = _model_dir(run_dir)
    if not (folder / layout.MANIFEST_FILE).is_file():
        raise PublishError(
            f"{run_dir}: no {layout.MANIFEST_FILE} here or in model/; "
            "expected a run folder written by 'recyclops train'"
        )
    if force is not None and not force.strip():
        raise PublishError("--force needs a reason (it is recorded in the manifest)")
    store.check_ready()  # a mistyped bucket is an error here, not a silent new bucket
    raw_manifest = (folder / layout.MANIFEST_FILE).read_bytes()
    manifest = parse_manifest(raw_manifest, str(folder / layout.MANIFEST_FILE))
    manifest.verify_folder(folder)
    verdict = _check_verdict(run_dir, sha256_file(folder / manifest.model_file), force)
    try:
        proved = check_folder(folder, manifest, require_golden=force is None)
    except RecyclopsError as exc:
        raise PublishError(f"refusing to publish: {exc}") from None
    logger.info("model %s: %s", manifest.version, proved)
    if force is not None:
        blessing = manifest.blessing or Blessing(blessed=False)
        manifest = manifest.model_copy(
            update={"blessing": blessing.model_copy(update={"forced": force.strip()[:1000]})}
        )
        raw_manifest = manifest.to_json()
        atomic_write_bytes(folder / layout.MANIFEST_FILE, raw_manifest)
    champion = (verdict.get("champion") or {}).get("version")
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
        serving = latest(store, channel)
        if serving is not None and serving.version == manifest.version:
            logger.info("channel %s already serves %s: nothing to move", channel, serving.version)
            if mqtt_config is not None and mqtt_config.host:
                notify(mqtt_config, serving, notify_timeout)
            return manifest
        pointer = advance(
            store,
            channel,
            version=manifest.version,
            manifest_sha256=sha256_bytes(raw_manifest),
            note=f"forced: {force.strip()}" if force is not None else None,
            expect_version=champion,
            check_expected=force is None,
        )
    except StoreError as exc:
        raise PublishError(f"upload failed, channel {channel!r} unchanged: {exc}") from exc
    logger.info(
        "channel %s now points at %s (generation %d)", channel, manifest.version, pointer.generation
    )
    if mqtt_config is not None and mqtt_config.host:
        notify(mqtt_config, pointer, notify_timeout)
    return manifest


def notify(config: MqttConfig, pointer: ModelRef, timeout: float = 10.0) -> None:
    """The retained notice; a broker that is down is a warning (devices also poll)."""
    from ..shared.mqtt import MqttClient, MqttError

    topic = messages.model_topic(config.fleet, pointer.channel)
    try:
        client = MqttClient(config)
        try:
            if not client.start(wait=timeout):
                logger.warning(
                    "MQTT broker %s:%s unreachable (%s); devices will find the model by polling",
                    config.host,
                    config.port,
                    client.last_error or "no answer",
                )
                return
            if not client.publish(topic, pointer.notice_payload(), retain=True, wait=timeout):
                logger.warning("MQTT notice on %s not acknowledged; devices will poll", topic)
                return
        finally:
            client.stop()
    except MqttError as exc:
        logger.warning("MQTT notice not sent (%s); devices will poll", exc)
        return
    logger.info("notice retained on %s", topic)


def verify_stored(store: ObjectStore, version: str) -> str:
    """Check a stored version the way a bin will (files, contract, golden set, on LiteRT);
    returns its manifest's SHA-256."""
    import tempfile

    mkey = layout.manifest_key(version)
    raw = store.get(mkey)
    manifest = parse_manifest(raw, mkey)
    with tempfile.TemporaryDirectory(prefix="recyclops-verify-") as tmp:
        folder = Path(tmp)
        for entry in manifest.files:
            store.get_file(layout.model_file_key(version, entry.name), folder / entry.name)
        manifest.verify_folder(folder)
        check_folder(folder, manifest, require_golden=False)
    return sha256_bytes(raw)


def rollback(
    store: ObjectStore,
    channel: str,
    to_version: str,
    mqtt_config: MqttConfig | None = None,
    *,
    note: str | None = None,
    notify_timeout: float = 10.0,
) -> ModelRef:
    """Point ``channel`` back at ``to_version`` with a new, higher generation (bins refuse
    anything older than what they serve, so going back is a deliberate, recorded act).

    The version must have served this channel before, and it is checked again the way a
    bin will check it (files, contract, golden set) before the channel moves.
    """
    from .channels import ChannelError, history, read_pointer

    past = history(store, channel)
    current = read_pointer(store, channel)
    if current is not None and current.version == to_version:
        raise ChannelError(f"channel {channel!r} already serves {to_version}")
    served = {p.version for p in past} | ({current.version} if current else set())
    if to_version not in served:
        raise ChannelError(
            f"{to_version} never served channel {channel!r} "
            f"(it served: {', '.join(sorted(served)) or 'nothing'}); publish it instead"
        )
    try:
        manifest_sha = verify_stored(store, to_version)
    except RecyclopsError as exc:
        raise PublishError(f"cannot roll back to {to_version}: {exc}") from None
    pointer = advance(
        store,
        channel,
        version=to_version,
        manifest_sha256=manifest_sha,
        action="rollback",
        note=note,
    )
    logger.info(
        "channel %s rolled back to %s (generation %d)", channel, to_version, pointer.generation
    )
    if mqtt_config is not None and mqtt_config.host:
        notify(mqtt_config, pointer, notify_timeout)
    return pointer
