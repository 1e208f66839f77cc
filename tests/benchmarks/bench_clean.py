"""Review tool: queue load from S3 (parallel vs one at a time), decision latency over HTTP,
time until a decision is durable in the store, and the cost of a journal flush.

Runs against a real SeaweedFS started here. ``--quick`` uses fewer records.
"""

import argparse
import hashlib
import http.client
import io
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image

from recyclops.console import QueueFilter, ReviewSession
from recyclops.console.queue import load_queue
from recyclops.console.server import serve
from recyclops.shared import layout
from recyclops.shared.config.categories import default_categories
from recyclops.shared.hashing import sha256_bytes
from recyclops.shared.records import GatheredRecord
from recyclops.shared.store import S3Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the test support package
from support import devservers

LABELS = [c.name for c in default_categories()]


def seed(store: S3Store, count: int) -> list[str]:
    t0 = datetime(2026, 11, 1, tzinfo=UTC)

    def one(i: int) -> str:
        buf = io.BytesIO()
        noise = hashlib.sha256(str(i).encode()).digest() * 24  # 16x16 RGB, distinct per i
        Image.frombytes("RGB", (16, 16), noise).save(buf, "JPEG")
        data = buf.getvalue()
        sha = sha256_bytes(data)
        when = t0 + timedelta(seconds=i)
        label = LABELS[i % len(LABELS)]
        pred = LABELS[(i * 7) % len(LABELS)]
        rec = GatheredRecord(
            sha256=sha,
            label=label,
            device=f"bin-{i % 4}",
            captured_at=when,
            model_version="v1",
            prediction=pred,
            score=(i % 100) / 100,
        )
        store.put(layout.image_key(sha), data)
        store.put(layout.gathered_key(rec.device, when.date(), sha), rec.model_dump_json().encode())
        return sha

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, range(count)))


def post(port: int, path: str, body: dict) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = json.loads(resp.read())
        assert resp.status == 200, data
        return data
    finally:
        conn.close()


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", dest="json_out")
    args = parser.parse_args()
    count = 300 if args.quick else 2000
    decisions = 50 if args.quick else 200
    figures: dict[str, float | int | str] = {"gathered records": count}
    with tempfile.TemporaryDirectory() as tmp, devservers.seaweedfs(Path(tmp) / "s3") as s3:
        import os

        os.environ.update(s3.env())
        store = S3Store(s3.bucket, "bench", endpoint_url=s3.endpoint_url, region="us-east-1")
        t0 = time.perf_counter()
        seed(store, count)
        figures["seed time (s)"] = round(time.perf_counter() - t0, 1)

        load_rows = []
        timings: dict[int, list[float]] = {}
        for workers in (1, 16):
            runs = []
            for _ in range(3 if args.quick else 2):
                t0 = time.perf_counter()
                loaded = load_queue(store, QueueFilter(), workers=workers)
                runs.append(time.perf_counter() - t0)
                assert len(loaded.order) == count
            timings[workers] = runs
            load_rows.append(
                [
                    workers,
                    f"{statistics.median(runs):.2f}",
                    f"{count / statistics.median(runs):.0f}",
                ]
            )
        speedup = statistics.median(timings[1]) / statistics.median(timings[16])
        figures["queue load speed-up, 16 readers vs 1"] = round(speedup, 1)

        session = ReviewSession(
            store, default_categories(), reviewer="bench", flush_seconds=2.0, flush_min_seconds=0.5
        )
        server = serve(session, "127.0.0.1", 0).start()
        port = server.server_address[1]
        latencies, durable = [], []
        for i in range(decisions):
            sha = session.current().sha256  # type: ignore[union-attr]
            t0 = time.perf_counter()
            post(port, "/api/decide", {"sha256": sha, "label": LABELS[i % len(LABELS)]})
            latencies.append(time.perf_counter() - t0)
            if i % 10 == 0:  # how long until it is in the store
                while True:
                    journal = (
                        store.get(session.journal_key) if store.exists(session.journal_key) else b""
                    )
                    if journal.count(b"\n") >= i + 1:
                        break
                    time.sleep(0.01)
                durable.append(time.perf_counter() - t0)
        server.stop()
        session.close()
        data = store.get(session.journal_key)
        flushes = []
        for _ in range(5):
            t0 = time.perf_counter()
            store.put(session.journal_key + ".copy", data)
            flushes.append(time.perf_counter() - t0)
        store.delete(session.journal_key + ".copy")

    figures["decide over HTTP, median (ms)"] = float(ms(latencies))
    figures["decide over HTTP, p95 (ms)"] = round(
        sorted(latencies)[int(0.95 * len(latencies))] * 1000, 1
    )
    figures["decision to durable in S3, median (ms)"] = float(ms(durable))
    figures["decision to durable in S3, max (ms)"] = round(max(durable) * 1000, 1)
    figures[f"journal flush, {decisions} decisions ({len(data)} B), median (ms)"] = float(
        ms(flushes)
    )
    result = {
        "title": "Review tool (clean)",
        "tables": [
            {
                "caption": f"Queue load: {count} gathered records listed and read from SeaweedFS",
                "headers": ["parallel readers", "seconds (median)", "records/s"],
                "rows": load_rows,
            }
        ],
        "figures": figures,
        "notes": [
            "The original tool uploaded nothing until the end of a session; here every "
            "decision is in the session's journal object within the flush window "
            "(flush_min_seconds 0.5 s after the change; retried every flush_seconds 2 s).",
            "A flush rewrites the session's whole journal (one atomic S3 put).",
            "SeaweedFS runs on the same 2 cores, so a queue load is CPU-bound (boto3 per "
            "request) and parallel readers gain little here; against a remote S3 with tens of "
            "milliseconds per GET they overlap the waiting.",
            "'Durable' is measured while typing continuously: writes are coalesced to one "
            "per flush_min_seconds, so it sits near 0.5 s by design.",
        ],
        "plots": [],
    }
    print(f"# {result['title']}\n")
    print("| parallel readers | seconds | records/s |\n|---|---|---|")
    for row in load_rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    print()
    for key, value in figures.items():
        print(f"- {key}: {value}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
