"""``recyclops setup`` sync throughput from S3 (a real SeaweedFS started here): parallel
against one-at-a-time downloads, and a resumed sync where everything is already present.

Uses real TrashNet JPEGs from ../shared when present (else synthetic ones). ``--quick``:
fewer images.
"""

import argparse
import logging
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from recyclops.cloud.setup import sync_dataset
from recyclops.shared import layout
from recyclops.shared.hashing import sha256_bytes
from recyclops.shared.journals import Decision, dump_journal
from recyclops.shared.store import S3Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the test support package
from support import devservers
from support.benchutil import emit, find_trashnet, table
from support.synthetic import shapes


def images(count: int) -> list[tuple[str, bytes]]:
    root = find_trashnet()
    out: list[tuple[str, bytes]] = []
    if root is not None:
        cats = sorted(p.name for p in root.iterdir() if p.is_dir())
        files = sorted((f, c) for c in cats for f in (root / c).glob("*.jpg"))
        step = max(1, len(files) // count)
        out = [(c, f.read_bytes()) for f, c in files[::step][:count]]
    else:
        per = -(-count // 3)
        out = [
            (c, b) for c, bs in shapes(["red", "green", "blue"], per, size=384).items() for b in bs
        ][:count]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", dest="json_out")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    count = 200 if args.quick else 600
    data = images(count)
    cats = sorted({c for c, _ in data})
    total_mb = sum(len(b) for _, b in data) / 1e6
    rows = []
    with tempfile.TemporaryDirectory() as tmp, devservers.seaweedfs(Path(tmp) / "weed") as server:
        import os

        os.environ.update(server.env())
        store = S3Store(
            server.bucket, "bench", endpoint_url=server.endpoint_url, region="us-east-1"
        )
        decisions = []
        with ThreadPoolExecutor(16) as pool:
            shas = list(pool.map(lambda item: _put(store, item[1]), data))
        from datetime import UTC, datetime

        for i, ((label, _), sha) in enumerate(zip(data, shas, strict=True)):
            decisions.append(
                Decision(sha256=sha, session="bench", seq=i, time=datetime.now(UTC), label=label)
            )
        store.put(layout.labels_key("bench"), dump_journal(decisions))
        timings = {}
        for workers in (1, 8, 16):
            out = Path(tmp) / f"data-{workers}"
            t0 = time.monotonic()
            summary = sync_dataset(store, out, cats, workers=workers, progress=False)
            timings[workers] = time.monotonic() - t0
            assert summary.images == len(set(shas)), summary.lines()
        t0 = time.monotonic()
        again = sync_dataset(store, Path(tmp) / "data-8", cats, workers=8, progress=False)
        resumed = time.monotonic() - t0
        assert again.downloaded == 0
    base = timings[1]
    for workers, seconds in timings.items():
        rows.append(
            [
                f"{workers} worker{'s' if workers > 1 else ''}",
                len(data),
                f"{seconds:.2f}",
                f"{len(data) / seconds:.0f}",
                f"{total_mb / seconds:.1f}",
                f"{base / seconds:.1f}x",
            ]
        )
    rows.append(
        [
            "resume (all present, hashes checked)",
            len(data),
            f"{resumed:.2f}",
            f"{len(data) / resumed:.0f}",
            "–",
            "–",
        ]
    )
    result = {
        "title": "Setup sync from S3 (SeaweedFS)",
        "tables": [
            table(
                f"{len(data)} images, {total_mb:.1f} MB, one journal; "
                "each run into an empty folder",
                ["downloads", "images", "seconds", "images/s", "MB/s", "speed-up"],
                rows,
            )
        ],
        "figures": {
            "parallel_speedup_8": round(base / timings[8], 2),
            "images_per_s_8": round(len(data) / timings[8], 1),
        },
        "notes": [
            "every image is hash-checked and test-decoded before it is kept; SeaweedFS runs on the "
            "same 2 cores, so the parallel gain is a lower bound for a remote S3"
        ],
        "plots": [],
    }
    emit(result, args.json_out)
    return 0


def _put(store: S3Store, data: bytes) -> str:
    sha = sha256_bytes(data)
    store.put(layout.image_key(sha), data)
    return sha


if __name__ == "__main__":
    sys.exit(main())
