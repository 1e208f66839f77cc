"""Fleet: N simulated bins on one broker and one S3 store, with the edge's real update logic.

    .venv/bin/python tests/benchmarks/bench_fleet.py [--bins 200] [--procs 1,4] [--jitter 3]
        [--outages 0,10] [--json OUT]

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

The bins are spread over ``--procs`` worker processes (fleet_worker.py; each value in the
list is a fresh fleet, measured one after the other), their timestamps gathered here. The
simulation's CPU, not a real bin's, bounds the roll-out: every install (about 30 ms of CPU,
"CPU ms per install") runs on this machine's cores. "Fetches started" (after the jitter) is
the load a fleet would offer, "S3 requests" what the workers managed to send.
docs/benchmarks.md says more.
"""

import argparse
import contextlib
import json
import multiprocessing
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
sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))
import fleet_worker  # noqa: E402
from edge_helpers import publish_model  # noqa: E402
from fleet_sim import BUCKET_S, FLEET, dist, peak  # noqa: E402
from support import devservers  # noqa: E402
from support.benchutil import r2  # noqa: E402

from recyclops.shared import messages  # noqa: E402
from recyclops.shared.config.edge import UpdatesConfig  # noqa: E402
from recyclops.shared.config.mqtt import MqttConfig  # noqa: E402
from recyclops.shared.manifest import ModelRef  # noqa: E402
from recyclops.shared.mqtt import MqttClient  # noqa: E402
from recyclops.shared.store import ObjectStore  # noqa: E402
from recyclops.shared.store.s3 import S3Store  # noqa: E402

TOPIC = messages.model_topic(FLEET, "stable")


class Workers:
    """The fleet's worker processes (spawned: no paho or boto3 thread forked mid-flight);
    each step goes to every worker and their answers come back in order."""

    def __init__(
        self, procs: int, bins_n: int, work: Path, s3: devservers.S3Server, port: int
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conns = []
        self.procs = []
        first = 0
        for i in range(procs):
            count = bins_n // procs + (i < bins_n % procs)
            spec = fleet_worker.Spec(first, count, str(work), s3, "127.0.0.1", port)
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=fleet_worker.run, args=(child, spec), daemon=True)
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)
            first += count

    def gather(self) -> list[Any]:
        answers = []
        for conn in self.conns:
            kind, value = conn.recv()
            if kind == "error":
                raise RuntimeError(f"a fleet worker failed:\n{value}")
            answers.append(value)
        return answers

    def step(self, name: str, **kwargs: Any) -> list[Any]:
        for conn in self.conns:
            conn.send((name, kwargs))
        return self.gather()

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send(("stop", {}))
        for proc in self.procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()


def roll_out(
    workers: Workers,
    store: ObjectStore,
    publisher: MqttClient,
    version: str,
    generation: int,
    jitter: float,
    timeout: float,
) -> dict[str, Any]:
    notice: ModelRef = publish_model(store, version, generation=generation)
    workers.step("arm", jitter=jitter)  # each worker counts its CPU from here
    t0 = time.monotonic()
    assert publisher.publish(TOPIC, notice.notice_payload(), retain=True, wait=10)
    answers = workers.step("serving", version=version, t0=t0, timeout=timeout)
    bins = [b for a in answers for b in a["bins"]]
    events = sorted(e for a in answers for e in a["events"])
    latency = [b["served_at"] - t0 for b in bins]
    first: dict[str, float] = {}
    for t, _, _, device in events:
        first.setdefault(device, t)
    install = [b["served_at"] - first[b["device"]] for b in bins]
    top, spread = peak(events, t0)
    starts = sorted(b["fetch_started"] for b in bins)
    start_peak = max(Counter(int((t - t0) / BUCKET_S) for t in starts).values())
    gets = [e for e in events if e[1] == "GET"]
    return {
        "procs": len(answers),
        "jitter": jitter,
        "latency": dist(latency),
        "install": dist(install),
        "cpu_ms_per_bin": 1000 * sum(a["cpu"] for a in answers) / len(bins),
        "cpu_ms_per_install": dist([1000 * b["install_cpu"] for b in bins]),
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
    workers: Workers,
    stack: contextlib.ExitStack,
    broker: devservers.MqttBroker,
    work: Path,
    version: str,
    outage: float,
    timeout: float,
) -> tuple[devservers.MqttBroker, dict[str, Any]]:
    """Stop the broker with every bin connected, leave it down ``outage`` seconds, start it
    again on the same port; until every bin is back and has handled the retained notice."""
    workers.step("snapshot", version=version)
    t_stop = time.monotonic()
    broker.stop()
    down = max(workers.step("disconnected", timeout=timeout)) - t_stop
    time.sleep(outage)  # the scenario: the broker away this long (a reboot, a deploy)
    broker = stack.enter_context(
        devservers.mosquitto(work / "mosquitto", broker.port, persistence=True)
    )
    t_up = time.monotonic()
    answers = workers.step("back", t_up=t_up, version=version, timeout=timeout)
    bins = [b for a in answers for b in a["bins"]]
    gets = [e for a in answers for e in a["gets"]]
    return broker, {
        "procs": len(answers),
        "outage": outage,
        "disconnect_s": down,
        "reconnect": dist([b["reconnect"] - t_up for b in bins]),
        "handled": dist([b["handled"][0] - t_up for b in bins]),
        "ignored_as_served": sum(b["handled"][1] == version and not b["handled"][2] for b in bins),
        "reinstalled": sum(b["reinstalled"] for b in bins),
        "model_gets": sum(k.startswith("models/") for _, _, k, _ in gets),
        "all_gets": len(gets),
        "still_serving": sum(b["serving"] == version for b in bins),
    }


def report(
    bins_n: int, setups: dict[int, float], runs: list[dict], restarts: list[dict]
) -> dict[str, Any]:
    rollout = [
        [
            r["procs"],
            f"{r['jitter']:g}",
            r["start_peak"],
            r2(r["start_spread"]),
            r2(r["latency"]["median"]),
            r2(r["latency"]["p95"]),
            r2(r["latency"]["max"]),
            f"{r['within_10s']}/{bins_n}",
            r2(r["install"]["median"]),
            r2(r["install"]["max"]),
            round(r["cpu_ms_per_install"]["median"]),
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
            r["procs"],
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
                    f"Publish → all {bins_n} serving, by worker processes and "
                    "updates.jitter_seconds (s from the retained notice's publish; install = "
                    "a bin's first S3 request → serving)"
                ),
                "headers": [
                    "processes",
                    "jitter s",
                    "fetches started, peak per 100 ms",
                    "fetch starts spread s",
                    "median s",
                    "p95 s",
                    "max s",
                    "within 10 s",
                    "install median s",
                    "install max s",
                    "CPU ms per install (its thread, median)",
                    "CPU ms per bin (all threads)",
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
                    "processes",
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
            **{
                f"set-up with {procs} processes: bins built and connected (s)": r2(t)
                for procs, t in setups.items()
            },
        },
        "notes": [],
    }


def fleet(
    procs: int,
    bins_n: int,
    args: argparse.Namespace,
    stack: contextlib.ExitStack,
    work: Path,
    s3: devservers.S3Server,
    broker: devservers.MqttBroker,
) -> tuple[devservers.MqttBroker, float, list[dict], list[dict]]:
    """A fresh fleet over ``procs`` processes: two roll-outs (jitter 0, then --jitter) and
    the broker restarts; the channel starts at v1 again, its retained notice cleared."""
    admin = S3Store(s3.bucket, "fleet", endpoint_url=s3.endpoint_url, region="us-east-1")
    publish_model(admin, "v1", generation=1)
    publisher = MqttClient(MqttConfig(host=broker.host, port=broker.port, fleet=FLEET), "pub")
    assert publisher.start(wait=10)
    assert publisher.publish(TOPIC, b"", retain=True, wait=10)  # the last fleet's notice
    t = time.monotonic()
    workers = Workers(procs, bins_n, work / f"bins-{procs}", s3, broker.port)
    try:
        workers.gather()  # every worker: its bins built and connected
        setup = time.monotonic() - t
        print(f"{bins_n} bins in {procs} processes up and connected in {setup:.1f}s", flush=True)
        runs = [
            roll_out(workers, admin, publisher, "v2", 2, 0.0, args.timeout),
            roll_out(workers, admin, publisher, "v3", 3, args.jitter, args.timeout),
        ]
        publisher.stop()
        restarts = []
        for outage in (float(x) for x in args.outages.split(",")):
            broker, measured = restart_broker(
                workers, stack, broker, work, "v3", outage, args.timeout
            )
            restarts.append(measured)
    finally:
        publisher.stop()
        workers.close()
    return broker, setup, runs, restarts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bins", type=int, default=200)
    parser.add_argument(
        "--procs", default="4", help="worker processes; a list (1,4) runs one fleet each"
    )
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
    load_before = os.getloadavg()
    setups: dict[int, float] = {}
    runs: list[dict] = []
    restarts: list[dict] = []
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-fleet-")))
        s3 = stack.enter_context(devservers.seaweedfs(work / "seaweedfs"))
        os.environ.update(s3.env())
        broker = stack.enter_context(devservers.mosquitto(work / "mosquitto", persistence=True))
        for procs in (int(x) for x in args.procs.split(",")):
            broker, setups[procs], more_runs, more_restarts = fleet(
                procs, bins_n, args, stack, work, s3, broker
            )
            runs += more_runs
            restarts += more_restarts
    result = report(bins_n, setups, runs, restarts)
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
