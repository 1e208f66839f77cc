"""Helpers for the edge tests and the edge benchmark: publish a model the way the cloud does,
write replay frames, wait for the daemon (``wait_for``), read its status and events."""

import contextlib
import io
import json
import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image
from support.waiting import wait_until

from recyclops.edge.classifier import Classifier
from recyclops.shared import layout, messages
from recyclops.shared.golden import GoldenSet
from recyclops.shared.hashing import sha256_bytes
from recyclops.shared.manifest import ModelRef, parse_manifest
from recyclops.shared.store import ObjectStore

if TYPE_CHECKING:
    from recyclops.edge.daemon import EdgeDaemon
    from recyclops.shared.config import RecyclopsConfig

DATA = Path(__file__).resolve().parent / "fixture"
CATS = json.loads((DATA / "manifest.json").read_text())["categories"]
RED, GREEN, BLUE = (220, 20, 20), (20, 220, 20), (20, 20, 220)
GOLDEN = "golden.npz"


def fixture_manifest(version: str = "fixture-1", **changes: Any) -> bytes:
    """The committed fixture manifest, renamed to ``version`` and with ``changes`` applied."""
    data = json.loads((DATA / "manifest.json").read_text())
    data["version"] = version
    for key, value in changes.items():
        if key.startswith("input."):
            data["input"][key.split(".", 1)[1]] = value
        else:
            data[key] = value
    return json.dumps(data, indent=2).encode()


def publish_model(
    store: ObjectStore,
    version: str,
    *,
    channel: str = "stable",
    model_bytes: bytes | None = None,
    manifest: bytes | None = None,
    notice_sha: str | None = None,
    pointer: bool = True,
    generation: int = 0,
    golden: bytes | None = None,
) -> ModelRef:
    """Files under models/<version>/ (with the fixture's golden set unless another is given),
    the channel pointer last; returns the notice to send."""
    model = model_bytes if model_bytes is not None else (DATA / "model.tflite").read_bytes()
    manifest = manifest if manifest is not None else fixture_manifest(version)
    store.put(layout.model_file_key(version, layout.MODEL_FILE), model)
    store.put(layout.model_file_key(version, GOLDEN), golden or (DATA / GOLDEN).read_bytes())
    store.put(layout.manifest_key(version), manifest)
    notice = ModelRef(
        channel=channel,
        version=version,
        manifest_key=layout.manifest_key(version),
        manifest_sha256=notice_sha or sha256_bytes(manifest),
        published_at=datetime.now(UTC),
        generation=generation,
    )
    if pointer:
        store.put(
            layout.channel_key(channel),
            notice.pointer_json(),
        )
    return notice


def notify(client: Any, fleet: str, notice: ModelRef) -> None:
    topic = messages.model_topic(fleet, notice.channel)
    assert client.publish(topic, notice.notice_payload(), retain=True, wait=5)


def honest_manifest(
    version: str, model_bytes: bytes, golden_bytes: bytes | None = None, **changes: Any
) -> bytes:
    """A manifest whose file entries match ``model_bytes`` and ``golden_bytes`` (default: the
    fixture's golden set), so only ``changes`` are wrong. ``golden=None`` in ``changes``
    drops the golden set."""
    data = json.loads(fixture_manifest(version, **changes))
    golden = golden_bytes or (DATA / GOLDEN).read_bytes()
    data["files"] = [
        {"name": name, "size": len(blob), "sha256": sha256_bytes(blob)}
        for name, blob in (("model.tflite", model_bytes), (GOLDEN, golden))
    ]
    if data.get("golden"):
        data["golden"]["count"] = len(GoldenSet.from_bytes(golden))
    parse_manifest(json.dumps(data))
    return json.dumps(data, indent=2).encode()


def float_manifest(version: str, model_bytes: bytes, golden: bytes | None = None) -> bytes:
    """An honest manifest for one of the fixture's float32-input models."""
    return honest_manifest(
        version,
        model_bytes,
        golden,
        **{"input.dtype": "float32", "input.scale": None, "input.zero_point": None},
    )


def golden_of(model_bytes: bytes, manifest: bytes, folder: Path) -> bytes:
    """The fixture's golden photos with the outputs ``model_bytes`` gives them, as the cloud
    records them at publish (computed here with the edge's own classifier)."""
    from recyclops.shared.preprocess import decode_rgb

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.tflite").write_bytes(model_bytes)
    (folder / "manifest.json").write_bytes(manifest)
    clf = Classifier(folder, threads=1)
    photos = GoldenSet.load(DATA / GOLDEN)
    probs = np.stack([clf.classify(decode_rgb(j)).probs for j in photos.jpegs])
    return GoldenSet(photos.jpegs, probs, photos.labels, photos.shas).to_bytes()


def write_frames(
    folder: Path, colours: list[tuple[int, int, int]], size: tuple[int, int] = (96, 72)
) -> Path:
    """One PNG per colour, in sorted order; slight noise makes each frame unique."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(colours))
    for i, colour in enumerate(colours):
        pixels = np.clip(
            np.full((size[1], size[0], 3), colour, np.int16)
            + rng.integers(-6, 7, (size[1], size[0], 3)),
            0,
            255,
        )
        Image.fromarray(pixels.astype(np.uint8), "RGB").save(folder / f"frame-{i:04d}.png")
    return folder


def install_fixture(model_dir: Path, version: str = "fixture-1") -> None:
    """Put the fixture model in place as the current version (as if installed earlier)."""
    target = model_dir / "versions" / version
    target.mkdir(parents=True)
    shutil.copy(DATA / "model.tflite", target / "model.tflite")
    shutil.copy(DATA / GOLDEN, target / GOLDEN)
    (target / "manifest.json").write_bytes(fixture_manifest(version))
    (model_dir / "current").symlink_to(Path("versions") / version)


class Harness:
    """An Updater wired to record what it hands over, like the daemon does."""

    def __init__(self, tmp_path: Path, store: Any, poll: float = 0.2, **updates: Any) -> None:
        from recyclops.edge.models import ModelRepo
        from recyclops.edge.updater import Updater
        from recyclops.shared.config.edge import ClassifierConfig, UpdatesConfig

        self.repo = ModelRepo(
            tmp_path / "models",
            CATS,
            ClassifierConfig(threads=1),
            UpdatesConfig(keep_versions=2, **updates),
        )
        self.serving: Classifier | None = None
        self.rejected: list[tuple[str, str]] = []
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.connected = lambda: False
        self.updater = Updater(
            self.repo,
            store,
            "stable",
            self.stop,
            poll_seconds=poll,
            poll_seconds_connected=600,
            current=lambda: self.serving.version if self.serving else None,
            on_ready=self._ready,
            on_rejected=lambda v, r: self.rejected.append((v, r)),
            mqtt_connected=lambda: self.connected(),
        )

    def _ready(self, classifier: Classifier, via: str) -> None:
        self.serving = classifier
        self.via = via
        self.ready.set()

    def wait_version(self, version: str, timeout: float = 10) -> bool:
        def served() -> bool:
            return self.serving is not None and self.serving.version == version

        return wait_until(served, timeout, f"model {version} handed over")


def strict_json(text: str | bytes) -> Any:
    """json.loads that fails on bare NaN/Infinity (Python's json accepts them; nothing else)."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"bare {name} in JSON: {text[:300]!r}")

    return json.loads(text, parse_constant=refuse)


class Events(io.StringIO):
    """The daemon's --jsonl stream, every line parsed strictly."""

    def lines(self) -> list[dict[str, Any]]:
        return [strict_json(line) for line in self.getvalue().splitlines()]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.lines() if e["event"] == kind]


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str | None = None) -> Any:
    """The edge tests' name for ``support.waiting.wait_until``."""
    return wait_until(predicate, timeout, what)


def start(daemon: "EdgeDaemon") -> threading.Thread:
    thread = threading.Thread(target=daemon.run, kwargs={"drain_seconds": 5}, daemon=True)
    thread.start()
    return thread


def status(config: "RecyclopsConfig") -> dict[str, Any]:
    try:
        return strict_json((Path(config.edge.state_dir) / "status.json").read_text())
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` unwritable for this process, the way a bin meets it: as root a
    read-only bind mount (EROFS, an SD card remounted read-only), otherwise chmod."""
    import os
    import subprocess

    import pytest

    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            writable(folder)
        return
    mounts = [["mount", "--bind", str(folder), str(folder)]]
    mounts.append(["mount", "-o", "remount,bind,ro", str(folder), str(folder)])
    for cmd in mounts:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            subprocess.run(["umount", str(folder)], capture_output=True)
            pytest.skip(f"cannot make a read-only mount here: {done.stderr.strip()}")
    try:
        yield
    finally:
        writable(folder)


def writable(folder: Path) -> None:
    """Undo ``read_only`` early (idempotent)."""
    import os
    import subprocess

    if os.geteuid() != 0:
        folder.chmod(0o755)
    else:
        subprocess.run(["umount", str(folder)], capture_output=True)


def long_pulse(pin: Any) -> bool:
    """A refusal blinks 0.3 s, a kept gather 0.1 s: mock pin states hold the time since the
    previous change, so b.timestamp is a's length."""
    import itertools

    states = list(pin.states)
    return any(
        a.state and not b.state and b.timestamp > 0.25 for a, b in itertools.pairwise(states)
    )


def on_s3_and_mqtt(
    config: "RecyclopsConfig", s3_server: Any, s3_url: str, mqtt_config: Any
) -> "RecyclopsConfig":
    """``config`` pointed at the session's SeaweedFS (its own prefix) and a real broker."""
    from recyclops.shared.config import RecyclopsConfig

    data = config.model_dump()
    data["store"] = {"url": s3_url, "endpoint_url": s3_server.endpoint_url, "region": "us-east-1"}
    data["mqtt"] = mqtt_config.model_dump()
    return RecyclopsConfig.model_validate(data)
