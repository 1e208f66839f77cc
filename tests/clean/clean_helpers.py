"""Seed a store the way bins do: image bytes plus one gathered record per key press."""

import io
from datetime import UTC, date, datetime, timedelta

from PIL import Image

from recyclops.shared import layout
from recyclops.shared.hashing import sha256_bytes
from recyclops.shared.records import GatheredRecord, GatheredUndo
from recyclops.shared.store import ObjectStore

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def jpeg(seed: int, size: int = 48) -> bytes:
    """A small, distinct JPEG per seed."""
    img = Image.new("RGB", (size, size), ((seed * 37) % 256, (seed * 91) % 256, (seed * 13) % 256))
    for x in range(seed % size):
        img.putpixel((x, x), (255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def gather(store: ObjectStore, data: bytes, label: str, *, device: str = "bin-1",
           prediction: str | None = None, score: float | None = None,
           minutes: int = 0, day: date | None = None) -> str:
    sha = sha256_bytes(data)
    store.put(layout.image_key(sha), data, if_absent=True)
    when = T0 + timedelta(minutes=minutes)
    record = GatheredRecord(sha256=sha, label=label, device=device, captured_at=when,
                            model_version="v1" if prediction else None,
                            prediction=prediction, score=score)
    store.put(layout.gathered_key(device, day or when.date(), sha), record.model_dump_json().encode())
    return sha


def undo(store: ObjectStore, sha: str, device: str = "bin-1", day: date | None = None) -> None:
    tomb = GatheredUndo(sha256=sha, device=device, undone_at=T0)
    store.put(layout.gathered_undo_key(device, day or T0.date(), sha), tomb.model_dump_json().encode())


def seed_simple(store: ObjectStore, count: int = 6, labels: tuple[str, ...] = ("glass", "metal", "paper")) -> list[str]:
    """``count`` images, all agreeing with the model at falling confidence (queue order = list order)."""
    shas = []
    for i in range(count):
        label = labels[i % len(labels)]
        shas.append(gather(store, jpeg(i), label, prediction=label, score=0.5 + 0.05 * i, minutes=i))
    return shas
