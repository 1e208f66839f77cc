"""A fleet for the models page's actions, on a real store: the edge fixture model (a real
LiteRT model with its golden set) stored as v1 and v2, stable serving v1 and the canary
v1 then v2, channels moved by the real writer, telemetry stored as bins store it."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from clean_helpers import seed_simple

from recyclops.console import ReviewSession
from recyclops.console.server import CleanServer, serve
from recyclops.shared import layout
from recyclops.shared.config.categories import default_categories
from recyclops.shared.hashing import sha256_bytes
from recyclops.shared.messages import DeviceQuality
from recyclops.shared.quality import store_quality
from recyclops.shared.rollout.channels import advance
from recyclops.shared.store import ObjectStore

FIXTURE = Path(__file__).resolve().parents[1] / "edge" / "fixture"
NOW = datetime.now(UTC)
OPERATOR = "ada"


def store_model(store: ObjectStore, version: str) -> str:
    """The fixture model's files and manifest under ``version``; the manifest's SHA-256."""
    for name in (layout.MODEL_FILE, "golden.npz"):
        store.put(layout.model_file_key(version, name), (FIXTURE / name).read_bytes())
    manifest = json.loads((FIXTURE / "manifest.json").read_text())
    manifest["version"] = version
    raw = json.dumps(manifest, indent=2).encode()
    store.put(layout.manifest_key(version), raw)
    return sha256_bytes(raw)


def advance_at(store: ObjectStore, channel: str, version: str, sha: str, days_ago: float) -> None:
    """``advance``, then dated back (as if published ``days_ago``)."""
    pointer = advance(store, channel, version=version, manifest_sha256=sha)
    data = (
        pointer.model_copy(update={"published_at": NOW - timedelta(days=days_ago)})
        .model_dump_json()
        .encode()
    )
    store.put(layout.channel_generation_key(channel, pointer.generation), data)
    store.put(layout.channel_key(channel), data)


def seed_fleet(store: ObjectStore) -> None:
    """stable: v1 (generation 1); canary: v1 (1), then v2 (2, a day ago)."""
    shas = {v: store_model(store, v) for v in ("v1", "v2")}
    advance_at(store, "stable", "v1", shas["v1"], days_ago=30)
    advance_at(store, "canary", "v1", shas["v1"], days_ago=20)
    advance_at(store, "canary", "v2", shas["v2"], days_ago=1)


def report(
    store: ObjectStore, device: str, version: str, *, frames: int, low: int, agreed: int, bad: int
) -> None:
    """One hour of a bin's telemetry, two hours ago."""
    start = NOW - timedelta(hours=2)
    store_quality(
        store,
        DeviceQuality(
            device=device,
            run="r1",
            period_start=start,
            period_end=start + timedelta(hours=1),
            period_seconds=3600,
            uptime_seconds=7200,
            model_version=version,
            model_generation=1,
            model_versions=[version],
            frames=frames,
            low_confidence=low,
            low_confidence_threshold=0.5,
            presses=agreed + bad,
            presses_agreed=agreed,
            presses_disagreed=bad,
        ),
    )


def evidence_for_v2(store: ObjectStore) -> None:
    """Enough telemetry on both sides, and the canary no worse."""
    for device in ("bin-s1", "bin-s2"):
        report(store, device, "v1", frames=1500, low=90, agreed=470, bad=30)
    report(store, "bin-c", "v2", frames=2500, low=100, agreed=485, bad=15)


def too_little_for_v2(store: ObjectStore) -> None:
    """The canary has 812 of the 2,000 frames it needs."""
    report(store, "bin-s", "v1", frames=5000, low=250, agreed=940, bad=60)
    report(store, "bin-c", "v2", frames=812, low=40, agreed=200, bad=5)


@contextmanager
def console(store: ObjectStore, **kwargs: Any) -> Iterator[tuple[CleanServer, str]]:
    """A console on ``store`` whose operator is ``OPERATOR``; yields (server, base URL)."""
    seed_simple(store, 2)
    session = ReviewSession(store, default_categories(), reviewer=OPERATOR, start_flusher=False)
    host = kwargs.pop("host", "127.0.0.1")
    server = serve(session, host, 0, **kwargs).start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.stop()
        session.close()
