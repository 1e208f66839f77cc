"""Fleet: N simulated bins on one broker and one S3 store, with the edge's real update logic.

    .venv/bin/python tests/benchmarks/bench_fleet.py [--bins 200] [--jitter 3] [--json OUT]

Each bin is what the daemon wires for updates, without camera or frame loop: its own model
folder and ``ModelRepo``, an ``Updater`` thread, and a ``Telemetry`` (its own paho
connection, client id ``recyclops-edge-<device>``, last will, the model notice
subscription) to one mosquitto; its own ``S3Store`` (a boto3 client) to one SeaweedFS,
wrapped to timestamp every request. Measured in one run, side by side:

1. publish → all N serving: from the retained notice's publish until every bin has
   installed (fetched, verified, self-tested, golden-checked) the new version, with
   ``updates.jitter_seconds`` 0 and the default;
2. the S3 requests that causes, per 100 ms bucket (the peak rate), for both;
3. a broker restart (same port, retained messages persisted): until every bin is
   reconnected and has the retained notice again, which it ignores (already serving): no
   model or manifest is fetched again.

All bins share this one process, so its CPU (an install is 50-100 ms of it) bounds the
roll-out at a few hundred bins: "fetches started" (after the jitter) is the load a fleet
would offer, "S3 requests" what this process managed to send. docs/benchmarks.md says more.
"""

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "edge"))
from edge_helpers import publish_model  # noqa: E402
from fleet_sim import BUCKET_S, FLEET, Bin, Timeline, dist, make_bin, peak  # noqa: E402
from support import devservers  # noqa: E402
from support.benchutil import r2  # noqa: E402
from support.waiting import wait_until  # noqa: E402

from recyclops.shared import messages  # noqa: E402
from recyclops.shared.config.edge import UpdatesConfig  # noqa: E402
from recyclops.shared.config.mqtt import MqttConfig  # noqa: E402
from recyclops.shared.manifest import ModelRef  # noqa: E402
from recyclops.shared.mqtt import MqttClient  # noqa: E402
from recyclops.shared.store import ObjectStore  # noqa: E402
from recyclops.shared.store.s3 import S3Store  # noqa: E402


def roll_out(
    bins: list[Bin],
    store: ObjectStore,
    publisher: MqttClient,
    tl: Timeline,
    version: str,
    generation: int,
    jitter: float,
    timeout: float,
) -> dict[str, Any]:
    for b in bins:
        b.updater.jitter_seconds = jitter
    notice: ModelRef = publish_model(store, version, generation=generation)
    t0 = time.monotonic()
    cpu0 = time.process_time()  # every bin shares this process: its CPU is the fleet's
    topic = messages.model_topic(FLEET, "stable")
    assert publisher.publish(topic, notice.notice_payload(), retain=True, wait=10)
    wait_until(
        lambda: sum(b.version() == version for b in bins) == len(bins) or None,
        timeout,
        f"all {len(bins)} bins serving {version}",
        max_step=0.05,
    )
    cpu = time.process_time() - cpu0
    latency = [b.served_at[version] - t0 for b in bins]
    events = tl.since(t0)
    first = {}
    for t, _, _, device in events:
        first.setdefault(device, t)
    install = [b.served_at[version] - first[b.device] for b in bins]
    top, spread = peak(events, t0)
    starts = sorted(b.fetch_started[version] for b in bins)
    start_peak = max(Counter(int((t - t0) / BUCKET_S) for t in starts).values())
    gets = [e for e in events if e[1] == "GET"]
    return {
        "jitter": jitter,
        "latency": dist(latency),
        "install": dist(install),
        "cpu_ms_per_bin": 1000 * cpu / len(bins),
        "within_10s": sum(x <= 10 for x in latency),
        "requests": len(events),
        "gets": len(gets),
        "model_gets": sum(k.startswith("models/") for _, _, k, _ in gets),
        "peak_per_bucket": top,
        "start_peak": start_peak,
        "start_spread": starts[-1] - starts[0],
        "spread_s": spread,
    }


def restart_broker(
    bins: list[Bin],
    stack: contextlib.ExitStack,
    broker: devservers.MqttBroker,
    work: Path,
    tl: Timeline,
    version: str,
    outage: float,
    timeout: float,
) -> tuple[devservers.MqttBroker, dict[str, Any]]:
    """Stop the broker with every bin connected, leave it down ``outage`` seconds, start it
    again on the same port; until every bin is back and has handled the retained notice."""
    served = [b.served_at[version] for b in bins]
    seen = [len(b.handled) for b in bins]
    t_stop = time.monotonic()
    broker.stop()
    wait_until(lambda: not any(b.telemetry.connected for b in bins), timeout, "all disconnected")
    down = time.monotonic() - t_stop
    time.sleep(outage)  # the scenario: the broker away this long (a reboot, a deploy)
    broker = stack.enter_context(
        devservers.mosquitto(work / "mosquitto", broker.port, persistence=True)
    )
    t_up = time.monotonic()

    def back() -> bool:
        return all(
            b.telemetry.connected and b.connects[-1] > t_up and len(b.handled) > s
            for b, s in zip(bins, seen, strict=True)
        )

    wait_until(back, timeout, "all reconnected, retained notice handled", max_step=0.05)
    reconnect = [b.connects[-1] - t_up for b in bins]
    again = [b.handled[s] for b, s in zip(bins, seen, strict=True)]
    events = [e for e in tl.since(t_stop) if e[1] == "GET"]
    return broker, {
        "outage": outage,
        "disconnect_s": down,
        "reconnect": dist(reconnect),
        "handled": dist([t - t_up for t, _, _ in again]),
        "ignored_as_served": sum(v == version and not installed for _, v, installed in again),
        "reinstalled": sum(b.served_at[version] != t for b, t in zip(bins, served, strict=True)),
        "model_gets": sum(k.startswith("models/") for _, _, k, _ in events),
        "all_gets": len(events),
        "still_serving": sum(b.version() == version for b in bins),
    }


def report(bins_n: int, setup: float, runs: list[dict], restarts: list[dict]) -> dict[str, Any]:
    rollout = [
        [
            f"{r['jitter']:g}",
            r["start_peak"],
            r2(r["start_spread"]),
            r2(r["latency"]["median"]),
            r2(r["latency"]["p95"]),
            r2(r["latency"]["max"]),
            f"{r['within_10s']}/{bins_n}",
            r2(r["install"]["median"]),
            r2(r["install"]["max"]),
            round(r["cpu_ms_per_bin"]),
            r["requests"],
            r["peak_per_bucket"],
            round(r["peak_per_bucket"] / BUCKET_S),
            r2(r["spread_s"]),
        ]
        for r in runs
    ]
    restart = [
        [
            f"{r['outage']:g}",
            r2(r["disconnect_s"]),
            r2(r["reconnect"]["min"]),
            r2(r["reconnect"]["median"]),
            r2(r["reconnect"]["max"]),
            r2(r["reconnect"]["max"] - r["reconnect"]["min"]),
            r2(r["handled"]["max"]),
            f"{r['ignored_as_served']}/{bins_n}",
            r["reinstalled"],
            r["model_gets"],
            f"{r['still_serving']}/{bins_n}",
        ]
        for r in restarts
    ]
    return {
        "title": f"Fleet: {bins_n} bins on one broker",
        "tables": [
            {
                "caption": (
                    f"Publish → all {bins_n} serving, by updates.jitter_seconds (s from the "
                    "retained notice's publish; install = a bin's first S3 request → serving)"
                ),
                "headers": [
                    "jitter s",
                    "fetches started, peak per 100 ms",
                    "fetch starts spread s",
                    "median s",
                    "p95 s",
                    "max s",
                    "within 10 s",
                    "install median s",
                    "install max s",
                    "CPU ms per bin",
                    "S3 requests",
                    "S3 requests, peak per 100 ms",
                    "peak req/s",
                    "requests spread s",
                ],
                "rows": rollout,
            },
            {
                "caption": (
                    "Broker restart, same port, retained messages persisted (s after the "
                    "broker is back, unless said)"
                ),
                "headers": [
                    "broker down s",
                    "all disconnected s (after stop)",
                    "first reconnect",
                    "median reconnect",
                    "last reconnect",
                    "reconnect spread",
                    "all handled the retained notice",
                    "ignored as served",
                    "re-installed",
                    "model/manifest GETs",
                    "still serving",
                ],
                "rows": restart,
            },
        ],
        "figures": {
            "bins (each: Updater + ModelRepo + Telemetry/MQTT connection + S3 client)": bins_n,
            "set-up: bins built and connected (s)": r2(setup),
        },
        "notes": [],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bins", type=int, default=200)
    parser.add_argument(
        "--jitter", type=float, default=UpdatesConfig().jitter_seconds, help="the compared value"
    )
    parser.add_argument(
        "--outages", default="0,10", help="seconds the broker stays down, one restart each"
    )
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--quick", action="store_true", help="20 bins")
    parser.add_argument("--json")
    args = parser.parse_args()
    bins_n = 20 if args.quick else args.bins
    tl = Timeline()
    load_before = os.getloadavg()
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-fleet-")))
        s3 = stack.enter_context(devservers.seaweedfs(work / "seaweedfs"))
        os.environ.update(s3.env())
        broker = stack.enter_context(devservers.mosquitto(work / "mosquitto", persistence=True))
        admin = S3Store(s3.bucket, "fleet", endpoint_url=s3.endpoint_url, region="us-east-1")
        publish_model(admin, "v1", generation=1)
        mqtt = {"host": broker.host, "port": broker.port, "fleet": FLEET}
        publisher = MqttClient(MqttConfig(**mqtt), "bench-publisher")
        assert publisher.start(wait=10)
        t = time.monotonic()
        bins: list[Bin] = []
        try:
            for n in range(bins_n):
                bins.append(make_bin(n, work / "bins", s3, broker, tl))
            wait_until(lambda: all(b.telemetry.connected for b in bins), 60, "all connected")
            setup = time.monotonic() - t
            print(f"{bins_n} bins up and connected in {setup:.1f}s", flush=True)
            runs = [
                roll_out(bins, admin, publisher, tl, "v2", 2, 0.0, args.timeout),
                roll_out(bins, admin, publisher, tl, "v3", 3, args.jitter, args.timeout),
            ]
            publisher.stop()
            restarts = []
            for outage in (float(x) for x in args.outages.split(",")):
                broker, measured = restart_broker(
                    bins, stack, broker, work, tl, "v3", outage, args.timeout
                )
                restarts.append(measured)
        finally:
            for b in bins:
                b.updater.stop()
            for b in bins:
                b.updater.join(5)
                b.telemetry.stop(b.version())
    result = report(bins_n, setup, runs, restarts)
    load_after = os.getloadavg()
    result["figures"]["load average (1 min) before / after"] = (
        f"{load_before[0]:.1f} / {load_after[0]:.1f}"
    )
    for table in result["tables"]:
        print(f"\n{table['caption']}")
        print(" | ".join(table["headers"]))
        for row in table["rows"]:
            print(" | ".join(str(c) for c in row))
    print()
    for key, value in result["figures"].items():
        print(f"{key}: {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
