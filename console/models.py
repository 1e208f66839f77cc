"""What the models page shows: every model version with its blessing record, and every
channel with its generations. Read from the store, fresh on every request (publishes
are rare and the store is the only truth; nothing here is cached); the page's promote and
rollback are ``actions.py``."""

import logging
import math
from typing import Any

from recyclops.shared import channels_read
from recyclops.shared.errors import ManifestError, ObjectNotFoundError
from recyclops.shared.manifest import ModelManifest, ModelRef
from recyclops.shared.store import ObjectStore

logger = logging.getLogger(__name__)
Z95 = 1.959963984540054


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The 95% Wilson score interval of ``correct`` of ``n``: the interval the blessing's
    floor uses (``cloud/stats.wilson``), recomputed from the manifest's accuracy and count."""
    if n <= 0:
        return (0.0, 1.0)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _interval(accuracy: float | None, n: int) -> list[float] | None:
    if accuracy is None or n <= 0:
        return None
    lo, hi = wilson(round(accuracy * n), n)
    return [lo, hi]


def _model(m: ModelManifest, serving: dict[str, list[str]]) -> dict[str, Any]:
    b = m.blessing
    summary = b.summary if b else ""
    return {
        "version": m.version,
        "created": m.created.isoformat(),
        "categories": list(m.categories),
        "test_images": m.metrics.test_images,
        "int8_accuracy": m.metrics.int8_accuracy,
        "int8_interval": _interval(m.metrics.int8_accuracy, m.metrics.test_images),
        "float_accuracy": m.metrics.float_accuracy,
        "per_class": [
            {
                "name": name,
                "support": c.support,
                "int8_accuracy": c.int8_accuracy,
                "float_accuracy": c.float_accuracy,
            }
            for name, c in m.metrics.per_class.items()
        ],
        "blessing": None
        if b is None
        else {
            "blessed": b.blessed,
            "forced": b.forced,
            "champion_version": b.champion_version,
            "summary": summary,
            # the paired comparison on the test images both models never trained on
            "champion_lines": [
                line.strip() for line in summary.splitlines() if "champion" in line.lower()
            ],
        },
        "serving": serving.get(m.version, []),
    }


def _generation(p: ModelRef) -> dict[str, Any]:
    return {
        "generation": p.generation,
        "version": p.version,
        "action": p.action,
        "published_at": p.published_at.isoformat(),
        "note": p.note,
        "manifest_sha256": p.manifest_sha256,
    }


def _channel(store: ObjectStore, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "current": None, "history": [], "error": None}
    try:
        pointer = channels_read.read_pointer(store, name)
        out["current"] = _generation(pointer) if pointer else None
        out["history"] = [_generation(p) for p in reversed(channels_read.history(store, name))]
    except ManifestError as exc:
        out["error"] = str(exc)
    return out


def models_json(store: ObjectStore) -> dict[str, Any]:
    """``GET /api/models``: models newest first, channels by name; unreadable ones say why."""
    channels = [_channel(store, name) for name in channels_read.channel_names(store)]
    serving: dict[str, list[str]] = {}
    for ch in channels:
        if ch["current"]:
            serving.setdefault(ch["current"]["version"], []).append(ch["name"])
    models: list[dict[str, Any]] = []
    problems: list[dict[str, str]] = []
    for version in channels_read.model_versions(store):
        try:
            manifest = channels_read.read_manifest(store, version)
        except (ManifestError, ObjectNotFoundError) as exc:
            logger.warning("model %s: %s", version, exc)
            problems.append({"version": version, "error": str(exc)})
            continue
        models.append(_model(manifest, serving))
    models.sort(key=lambda m: (m["created"], m["version"]), reverse=True)
    champions = {m["version"]: m for m in models}
    for m in models:  # the champion's own figures beside the paired comparison
        champ = champions.get((m["blessing"] or {}).get("champion_version") or "")
        m["champion"] = None
        if champ is not None:
            m["champion"] = {"version": champ["version"], "int8_accuracy": champ["int8_accuracy"]}
    return {"models": models, "channels": channels, "problems": problems}
