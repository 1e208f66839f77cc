"""The fleet page's data load and ``promote``'s gather over a week of 60 s telemetry: every
period object raw against the daily roll-ups (``recyclops compact``), side by side in one
run, with the requests each makes (GET and LIST pages, counted by a wrapper around the store).

Seeds a real SeaweedFS started here (``--local``: a folder store instead) with period
records written straight to their layout keys by many threads: ``--bins`` bins, ``--days``
closed days of 1,440 periods each, and "today" up to noon (720 periods, left raw).
``--quick``: 2 bins, 1 day.
"""

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from recyclops.cloud.promote import gather
from recyclops.console.fleet import FleetRules, fleet_view
from recyclops.console.fleetread import TelemetryReader
from recyclops.shared import layout
from recyclops.shared.messages import DeviceQuality
from recyclops.shared.store import LocalStore, ObjectStore, S3Store
from recyclops.shared.telemetry_compact import compact_telemetry

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the test support package
from support import devservers
from support.benchutil import BENCH_DIR, emit, table
from support.counting import CountingStore

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
PERIOD = timedelta(seconds=60)
CLASSES = ["cardboard", "glass", "metal", "paper", "plastic", "trash"]


def body(device: str, start: datetime, i: int) -> bytes:
    """One period as a bin writes it (a shape like a real one: a few items, ~60 frames)."""
    hist = [(i * (k + 3)) % 7 + (k >= 6) * 5 for k in range(10)]
    agreed, disagreed = i % 3, int(i % 11 == 0)
    return (
        DeviceQuality(
            device=device,
            run="r1",
            period_start=start,
            period_end=start + PERIOD,
            period_seconds=60.0,
            uptime_seconds=86400.0 + i * 60,
            model_version="v7" if i % 2000 else "v8",
            model_generation=3,
            channel="stable",
            model_versions=["v7"] if i % 2000 else ["v8"],
            frames=sum(hist),
            frames_by_class={c: (i + k) % 5 for k, c in enumerate(CLASSES)},
            items={c: (i * k) % 3 for k, c in enumerate(CLASSES) if (i * k) % 3},
            top1_histogram=hist,
            low_confidence=sum(hist[:5]),
            low_confidence_threshold=0.5,
            presses=agreed + disagreed,
            presses_agreed=agreed,
            presses_disagreed=disagreed,
            spool_depth=i % 4,
        )
        .model_dump_json()
        .encode()
    )


def seed(store: ObjectStore, bins: int, days: int) -> int:
    """Every bin's periods from ``days`` days before today's midnight up to NOW."""
    first = datetime(NOW.year, NOW.month, NOW.day, tzinfo=UTC) - timedelta(days=days)
    per_bin = int((NOW - first) / PERIOD)

    def one(n: int) -> None:
        device, i = f"bin-{n % bins:03d}", n // bins
        start = first + i * PERIOD
        store.put(layout.telemetry_key(device, start, "r1"), body(device, start, i))

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(one, range(bins * per_bin), chunksize=64))
    return bins * per_bin


def measure(store: CountingStore, what: Callable[[], Any]) -> tuple[float, int, int, Any]:
    store.reset()
    t0 = time.perf_counter()
    result = what()
    return time.perf_counter() - t0, store.counts["GET"], store.counts["LIST"], result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--local", action="store_true", help="a folder store, not SeaweedFS")
    parser.add_argument("--bins", type=int, default=20)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--json", dest="json_out", default=str(BENCH_DIR / "telemetry.json"))
    args = parser.parse_args()
    if args.quick:
        args.bins, args.days = 2, 1
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # more threads than pooled connections
    with tempfile.TemporaryDirectory() as tmp:
        if args.local:
            run(LocalStore(Path(tmp) / "store"), "folder store", args)
        else:
            with devservers.seaweedfs(Path(tmp) / "weed") as server:
                os.environ.update(server.env())
                s3 = S3Store(
                    server.bucket, "bench", endpoint_url=server.endpoint_url, region="us-east-1"
                )
                run(s3, "SeaweedFS (same machine)", args)
    return 0


def run(inner: ObjectStore, where: str, args: argparse.Namespace) -> None:
    store = CountingStore(inner)
    rules = FleetRules()
    t0 = time.perf_counter()
    total = seed(inner, args.bins, args.days)
    seed_s = time.perf_counter() - t0
    since = NOW - timedelta(days=7)
    rows: list[list[Any]] = []

    def row(name: str, seconds: float, gets: int, lists: int, note: str) -> None:
        rows.append([name, f"{seconds:.1f}", f"{gets:,}", lists, note])
        print(rows[-1], flush=True)

    def page(reader: TelemetryReader) -> dict[str, Any]:
        return fleet_view(reader.load(NOW, rules), NOW, rules)

    s, g, lst, raw_page = measure(store, lambda: page(TelemetryReader(store, use_index=False)))
    periods = sum(b["records"] for b in raw_page["bins"])
    row("fleet page, first load, raw periods (before)", s, g, lst, f"{periods:,} periods")
    s, g, lst, raw_ev = measure(store, lambda: gather(store, since, NOW))
    used = sum(t.periods for t in raw_ev.by_version.values())
    row("promote's gather (7 days), raw periods (before)", s, g, lst, f"{used:,} periods")
    s, g, lst, first = measure(store, lambda: compact_telemetry(store, now=NOW))
    assert not first.failures
    row("compact, first run (every closed day)", s, g, lst, f"{len(first.written)} roll-ups")
    reader = TelemetryReader(store)
    s, g, lst, idx_page = measure(store, lambda: page(reader))
    assert idx_page == raw_page, "the fleet page differs with roll-ups"
    row("fleet page, first load, roll-ups", s, g, lst, "same figures")
    s, g, lst, warm = measure(store, lambda: page(reader))
    assert warm == raw_page
    row("fleet page, next load (nothing new)", s, g, lst, "same figures")
    s, g, lst, idx_ev = measure(store, lambda: gather(store, since, NOW))
    assert idx_ev == raw_ev, "promote's evidence differs with roll-ups"
    row("promote's gather (7 days), roll-ups", s, g, lst, "same tallies")
    s, g, lst, again = measure(store, lambda: compact_telemetry(store, now=NOW))
    assert not again.written
    row("compact again, nothing new", s, g, lst, f"{again.unchanged} checked")
    rollups = list(inner.list(layout.INDEX_TELEMETRY))
    result = {
        "title": "Fleet page and promote over a week of 60 s telemetry",
        "tables": [
            table(
                f"{total:,} period objects ({args.bins} bins x {args.days} closed days x 1,440 "
                f"+ today's 720), {where}",
                ["step", "seconds", "GET", "LIST pages", "result"],
                rows,
            )
        ],
        "figures": {
            "seed (direct puts, 32 threads) s": round(seed_s, 1),
            "roll-up objects": len(rollups),
            "roll-up bytes (gzip)": sum(inner.size(k) for k in rollups),
            "period object bytes (one)": len(body("bin-000", NOW, 1)),
        },
        "notes": ["LIST pages are counted as S3 answers them: 1,000 keys a page."],
    }
    emit(result, args.json_out)


if __name__ == "__main__":
    sys.exit(main())
