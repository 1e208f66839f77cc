"""Seed a store the way bins do: image bytes plus one gathered record per key press."""

import http.client
import io
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from PIL import Image, ImageDraw

from recyclops.shared import layout
from recyclops.shared.hashing import sha256_bytes
from recyclops.shared.records import GatheredRecord, GatheredUndo
from recyclops.shared.store import ObjectStore

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def jpeg(seed: int, size: int = 48) -> bytes:
    """A small, distinct JPEG per seed."""
    base = ((seed * 37 + 60) % 256, (seed * 91 + 90) % 256, (seed * 13 + 120) % 256)
    img = Image.new("RGB", (size, size), base)
    draw = ImageDraw.Draw(img)
    step = max(2, size // 8)
    for i in range(0, size, step):  # stripes and a seed-dependent disc: distinct bytes
        draw.line([(i, 0), (0, i)], fill=(255 - base[0], 200, base[2]), width=max(1, size // 40))
    r = size // 4 + seed % (size // 4)
    draw.ellipse([(size // 2 - r, size // 2 - r), (size // 2 + r, size // 2 + r)], outline="white")
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def gather(
    store: ObjectStore,
    data: bytes,
    label: str,
    *,
    device: str = "bin-1",
    prediction: str | None = None,
    score: float | None = None,
    minutes: int = 0,
    day: date | None = None,
) -> str:
    sha = sha256_bytes(data)
    store.put(layout.image_key(sha), data, if_absent=True)
    when = T0 + timedelta(minutes=minutes)
    record = GatheredRecord(
        sha256=sha,
        label=label,
        device=device,
        captured_at=when,
        model_version="v1" if prediction else None,
        prediction=prediction,
        score=score,
    )
    store.put(
        layout.gathered_key(device, day or when.date(), sha), record.model_dump_json().encode()
    )
    return sha


def undo(store: ObjectStore, sha: str, device: str = "bin-1", day: date | None = None) -> None:
    tomb = GatheredUndo(sha256=sha, device=device, captured_at=T0, undone_at=T0)
    store.put(
        layout.gathered_undo_key(device, day or T0.date(), sha), tomb.model_dump_json().encode()
    )


def seed_simple(
    store: ObjectStore, count: int = 6, labels: tuple[str, ...] = ("glass", "metal", "paper")
) -> list[str]:
    """``count`` images, agreeing with the model, rising confidence (= queue order)."""
    shas = []
    for i in range(count):
        label = labels[i % len(labels)]
        shas.append(
            gather(store, jpeg(i), label, prediction=label, score=0.5 + 0.05 * i, minutes=i)
        )
    return shas


def request(
    base: str,
    method: str,
    path: str,
    body: object = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """One request with full control of the headers; JSON answers are decoded."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    hdrs = {"Host": parts.netloc, **(headers or {})}
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
        out: Any = payload
        if resp.getheader("Content-Type", "").startswith("application/json"):
            out = json.loads(payload)
        return resp.status, out, {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
