"""Opening the review queue at 100,000 gathered records: every raw object against the
compacted index (``recyclops compact``), side by side in one run, with the requests each
makes (GET and LIST pages, counted by a wrapper around the store).

Seeds a real SeaweedFS started here (``--local``: a folder store instead) with records
written directly under their layout keys by many threads: ``--devices`` bins over ``--days``
days, the last day left raw ("today"), one in a hundred gathers undone. ``--quick``: 5,000.
"""

import argparse
import hashlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from recyclops.console.queue import load_queue
from recyclops.shared import layout
from recyclops.shared.compact import compact_gathered
from recyclops.shared.records import GatheredRecord, GatheredUndo
from recyclops.shared.store import LocalStore, ObjectStore, S3Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the test support package
from support import devservers
from support.benchutil import BENCH_DIR, emit, table
from support.counting import CountingStore

LABELS = ["cardboard", "glass", "metal", "paper", "plastic", "trash"]
LAST_DAY = date(2026, 11, 20)


def seed(store: ObjectStore, devices: int, days: int, per_day: int) -> int:
    """Records (and 1% undos) straight to their keys; returns how many records stand."""

    def one(i: int) -> int:
        device = f"bin-{i % devices:03d}"
        day = LAST_DAY - timedelta(days=(i // devices) // per_day)
        when = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=i % 86400)
        sha = hashlib.sha256(str(i).encode()).hexdigest()
        rec = GatheredRecord(
            sha256=sha,
            label=LABELS[i % 6],
            device=device,
            captured_at=when,
            model_version="v7",
            prediction=LABELS[(i * 7) % 6],
            score=(i % 100) / 100,
            width=224,
            height=224,
        )
        store.put(layout.gathered_key(device, day, sha), rec.model_dump_json().encode())
        if i % 100 == 99:
            undo = GatheredUndo(
                sha256=sha, device=device, captured_at=when, undone_at=when + timedelta(seconds=2)
            )
            store.put(layout.gathered_undo_key(device, day, sha), undo.model_dump_json().encode())
            return 0
        return 1

    with ThreadPoolExecutor(32) as pool:
        return sum(pool.map(one, range(devices * days * per_day), chunksize=64))


def measure(store: CountingStore, what: Callable[[], Any]) -> tuple[float, int, int, Any]:
    store.reset()
    t0 = time.perf_counter()
    result = what()
    return time.perf_counter() - t0, store.counts["GET"], store.counts["LIST"], result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--local", action="store_true", help="a folder store, not SeaweedFS")
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--days", type=int, default=50)
    parser.add_argument("--json", dest="json_out", default=str(BENCH_DIR / "index.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # more threads than pooled connections
    per_day = 5 if args.quick else 100
    total = args.devices * args.days * per_day
    with tempfile.TemporaryDirectory() as tmp:
        if args.local:
            run(LocalStore(Path(tmp) / "store"), "folder store", args, per_day, total)
        else:
            with devservers.seaweedfs(Path(tmp) / "weed") as server:
                os.environ.update(server.env())
                s3 = S3Store(
                    server.bucket, "bench", endpoint_url=server.endpoint_url, region="us-east-1"
                )
                run(s3, "SeaweedFS (same machine)", args, per_day, total)
    return 0


def run(inner: ObjectStore, where: str, args: argparse.Namespace, per_day: int, total: int) -> None:
    store = CountingStore(inner)
    t0 = time.perf_counter()
    standing = seed(inner, args.devices, args.days, per_day)
    seed_s = time.perf_counter() - t0
    today = LAST_DAY  # the last day stays raw: what bins uploaded since the last compaction
    rows: list[list[Any]] = []

    def row(name: str, seconds: float, gets: int, lists: int, note: str) -> None:
        rows.append([name, f"{seconds:.1f}", gets, lists, note])

    s, g, lst, raw = measure(store, lambda: load_queue(store, use_index=False))
    assert len(raw.items) == standing, (len(raw.items), standing)
    row("open the queue, raw objects (before)", s, g, lst, f"{len(raw.items)} images")
    s, g, lst, first = measure(store, lambda: compact_gathered(store, today=today))
    assert not first.failures
    row("compact, first run (the whole history)", s, g, lst, f"{len(first.written)} segments")
    s, g, lst, idx = measure(store, lambda: load_queue(store))
    assert idx.order == raw.order and len(idx.items) == standing
    row("open the queue, indexed", s, g, lst, f"{len(idx.items)} images, same order")
    s, g, lst, again = measure(store, lambda: compact_gathered(store, today=today))
    assert not again.written
    row("compact again, nothing new", s, g, lst, f"{again.unchanged} unchanged")
    s, g, lst, daily = measure(
        store, lambda: compact_gathered(store, today=today + timedelta(days=1))
    )
    row("compact the next day (seals one day)", s, g, lst, f"{len(daily.written)} rewritten")
    s, g, lst, idx2 = measure(store, lambda: load_queue(store))
    assert idx2.order == raw.order
    row("open the queue, indexed, nothing raw", s, g, lst, f"{len(idx2.items)} images")
    result = {
        "title": "Review queue and sync at 100,000 records",
        "tables": [
            table(
                f"{total:,} gathered records ({args.devices} bins x {args.days} days x {per_day}"
                f", 1% undone), {where}",
                ["step", "seconds", "GET", "LIST pages", "result"],
                rows,
            )
        ],
        "figures": {
            "seed (direct puts, 32 threads) s": round(seed_s, 1),
            "index objects": len(list(inner.list(layout.INDEX_GATHERED))),
            "index bytes": sum(inner.size(k) for k in inner.list(layout.INDEX_GATHERED)),
        },
        "notes": [
            "LIST pages are counted as S3 answers them: 1,000 keys a page.",
            "`recyclops setup` reads no gathered record (only journals and images): unchanged.",
        ],
    }
    emit(result, args.json_out)


if __name__ == "__main__":
    sys.exit(main())
