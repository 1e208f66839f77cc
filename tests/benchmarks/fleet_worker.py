"""One worker process of bench_fleet.py: builds its share of the simulated bins and answers
the parent's steps over a pipe, so a fleet can spread over a few processes (a Python
process's CPU, behind one interpreter lock, is what bounded a single-process fleet).

Times are ``time.monotonic()``, the system's monotonic clock, comparable across processes:
the parent publishes at ``t0`` and computes every latency from the bins' raw timestamps.
"""

import os
import sys
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from fleet_sim import Bin, Timeline, make_bin
from support import devservers
from support.waiting import wait_until


@dataclass(frozen=True)
class Spec:
    """What a worker needs: picklable (no process handles), sent at spawn."""

    first: int
    count: int
    work: str
    s3: devservers.S3Server
    broker_host: str
    broker_port: int


@dataclass(frozen=True)
class Broker:
    """The broker's address, as make_bin reads it."""

    host: str
    port: int


class Fleet:
    """This process's bins and the state one step leaves for the next."""

    def __init__(self, bins: list[Bin], timeline: Timeline) -> None:
        self.bins = bins
        self.tl = timeline
        self.cpu0 = 0.0
        self.served: list[float] = []
        self.seen: list[int] = []
        self.t_stop = 0.0

    def arm(self, jitter: float) -> None:
        for b in self.bins:
            b.updater.jitter_seconds = jitter
        self.cpu0 = time.process_time()

    def serving(self, version: str, t0: float, timeout: float) -> dict[str, Any]:
        """Until every bin here serves ``version``: its timestamps, and this process's CPU."""
        wait_until(
            lambda: all(b.version() == version for b in self.bins) or None,
            timeout,
            f"{len(self.bins)} bins serving {version}",
            max_step=0.05,
        )
        return {
            "cpu": time.process_time() - self.cpu0,
            "bins": [
                {
                    "device": b.device,
                    "served_at": b.served_at[version],
                    "fetch_started": b.fetch_started[version],
                    "install_cpu": b.install_cpu[version],
                }
                for b in self.bins
            ],
            "events": self.tl.since(t0),
        }

    def snapshot(self, version: str) -> None:
        self.served = [b.served_at[version] for b in self.bins]
        self.seen = [len(b.handled) for b in self.bins]
        self.t_stop = time.monotonic()

    def disconnected(self, timeout: float) -> float:
        wait_until(
            lambda: not any(b.telemetry.connected for b in self.bins), timeout, "disconnected"
        )
        return time.monotonic()

    def back(self, t_up: float, version: str, timeout: float) -> dict[str, Any]:
        """Until every bin here is reconnected and has handled the retained notice again."""

        def done() -> bool:
            return all(
                b.telemetry.connected
                and b.connects
                and b.connects[-1] > t_up
                and len(b.handled) > s
                for b, s in zip(self.bins, self.seen, strict=True)
            )

        wait_until(done, timeout, "reconnected, retained notice handled", max_step=0.05)
        return {
            "bins": [
                {
                    "reconnect": b.connects[-1],
                    "handled": b.handled[s],
                    "reinstalled": b.served_at[version] != t,
                    "serving": b.version(),
                }
                for b, s, t in zip(self.bins, self.seen, self.served, strict=True)
            ],
            "gets": [e for e in self.tl.since(self.t_stop) if e[1] == "GET"],
        }

    def stop(self) -> None:
        for b in self.bins:
            b.updater.stop()
        for b in self.bins:
            b.updater.join(5)
            b.telemetry.stop(b.version())


def run(conn: Connection, spec: Spec) -> None:
    """The worker's main: build, say ready, then answer (step, kwargs) until ("stop", {})."""
    os.environ.update(spec.s3.env())
    broker = Broker(spec.broker_host, spec.broker_port)
    tl = Timeline()
    bins: list[Bin] = []
    fleet = Fleet(bins, tl)
    try:
        t = time.monotonic()
        for n in range(spec.first, spec.first + spec.count):
            bins.append(make_bin(n, Path(spec.work), spec.s3, broker, tl))
        wait_until(lambda: all(b.telemetry.connected for b in bins), 60, "all connected")
        conn.send(("ok", time.monotonic() - t))
        while True:
            step, kwargs = conn.recv()
            if step == "stop":
                break
            conn.send(("ok", getattr(fleet, step)(**kwargs)))
    except BaseException:
        traceback.print_exc(file=sys.stderr)
        conn.send(("error", traceback.format_exc()))
    finally:
        fleet.stop()
        conn.close()
