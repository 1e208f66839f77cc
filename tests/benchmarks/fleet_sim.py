"""The simulated bins of bench_fleet.py: one bin's update parts, and the store wrapper that
timestamps every request of the fleet (split out so the benchmark reads as its steps)."""

import shutil
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "edge"))
from edge_helpers import CATS, DATA, GOLDEN, fixture_manifest  # noqa: E402
from support import devservers  # noqa: E402
from support.counting import CountingStore  # noqa: E402

from recyclops.edge.classifier import Classifier  # noqa: E402
from recyclops.edge.models import ModelRepo  # noqa: E402
from recyclops.edge.telemetry import Telemetry  # noqa: E402
from recyclops.edge.updater import Updater  # noqa: E402
from recyclops.shared.config import RecyclopsConfig  # noqa: E402
from recyclops.shared.manifest import ModelRef  # noqa: E402
from recyclops.shared.store import ObjectStore  # noqa: E402
from recyclops.shared.store.s3 import S3Store  # noqa: E402

FLEET = "bench"
BUCKET_S = 0.1
Event = tuple[float, str, str, str]


class Timeline:
    """Every store request of the fleet: (monotonic time, kind, key, device)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.lock = threading.Lock()

    def add(self, kind: str, key: str, device: str) -> None:
        with self.lock:
            self.events.append((time.monotonic(), kind, key, device))

    def since(self, start: float) -> list[Event]:
        with self.lock:
            return [e for e in self.events if e[0] >= start]


class TimedStore(CountingStore):
    """A bin's store: counts like S3 bills, and puts each GET/HEAD on the fleet's timeline."""

    def __init__(self, inner: ObjectStore, timeline: Timeline, device: str) -> None:
        super().__init__(inner)
        self.timeline = timeline
        self.device = device

    def get(self, key: str) -> bytes:
        self.timeline.add("GET", key, self.device)
        return super().get(key)

    def exists(self, key: str) -> bool:
        self.timeline.add("HEAD", key, self.device)
        return super().exists(key)

    def size(self, key: str) -> int:
        self.timeline.add("HEAD", key, self.device)
        return super().size(key)


@dataclass
class Bin:
    device: str
    repo: ModelRepo
    updater: Updater
    telemetry: Telemetry
    serving: Classifier | None = None
    served_at: dict[str, float] = field(default_factory=dict)
    fetch_started: dict[str, float] = field(default_factory=dict)
    install_cpu: dict[str, float] = field(default_factory=dict)  # the install thread's CPU s
    connects: list[float] = field(default_factory=list)
    handled: list[tuple[float, str, bool]] = field(default_factory=list)  # MQTT notices

    def version(self) -> str | None:
        return self.serving.version if self.serving else None


class Address(Protocol):
    """A broker's address (devservers.MqttBroker, or fleet_worker.Broker in a worker)."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...


def make_bin(n: int, work: Path, s3: devservers.S3Server, broker: Address, tl: Timeline) -> Bin:
    device = f"bin-{n:03d}"
    config = RecyclopsConfig.model_validate(
        {
            "store": {"url": f"s3://{s3.bucket}/fleet", "endpoint_url": s3.endpoint_url},
            "mqtt": {"host": broker.host, "port": broker.port, "fleet": FLEET},
            "edge": {"device_id": device, "model_dir": str(work / device)},
        }
    )
    edge = config.edge
    store = TimedStore(
        S3Store(s3.bucket, "fleet", endpoint_url=s3.endpoint_url, region="us-east-1"),
        tl,
        device,
    )
    folder = Path(edge.model_dir)
    target = folder / "versions" / "v1"  # installed earlier (as install_fixture does)
    target.mkdir(parents=True)
    shutil.copy(DATA / "model.tflite", target / "model.tflite")
    shutil.copy(DATA / GOLDEN, target / GOLDEN)
    (target / "manifest.json").write_bytes(fixture_manifest("v1"))
    (folder / "current").symlink_to(Path("versions") / "v1")
    classifier = edge.classifier.model_copy(update={"threads": 1})
    repo = ModelRepo(folder, CATS, classifier, edge.updates)
    repo.set_generation(1, "v1")
    telemetry = Telemetry(config)
    holder: list[Bin] = []

    def ready(clf: Classifier, via: str) -> None:
        b = holder[0]
        b.served_at[clf.version] = time.monotonic()  # first: serving is what waiters watch
        b.serving = clf

    updater = Updater(
        repo,
        store,
        edge.channel,
        poll_seconds=edge.updates.poll_seconds,
        poll_seconds_connected=edge.updates.poll_seconds_connected,
        current=lambda: holder[0].version(),
        on_ready=ready,
        on_rejected=lambda v, r: print(f"{device}: rejected {v}: {r}", file=sys.stderr),
        mqtt_connected=lambda: telemetry.connected,
        jitter_seconds=edge.updates.jitter_seconds,
    )
    b = Bin(device, repo, updater, telemetry, serving=repo.load_current())
    holder.append(b)

    handle = updater.handle

    def handled(notice: ModelRef, via: str) -> bool:
        """The updater's own ``handle``, recording what each MQTT notice led to."""
        installed = handle(notice, via)
        if via == "mqtt":
            b.handled.append((time.monotonic(), notice.version, installed))
        return installed

    updater.handle = handled  # type: ignore[method-assign]
    install = repo.install

    def installing(notice: ModelRef, store: ObjectStore) -> Classifier:
        """The fetch starts here (after the jitter): the load a fleet would offer the store."""
        b.fetch_started[notice.version] = time.monotonic()
        cpu = time.thread_time()
        try:
            return install(notice, store)
        finally:
            b.install_cpu[notice.version] = time.thread_time() - cpu

    repo.install = installing  # type: ignore[method-assign]
    telemetry.start(updater.on_mqtt)
    telemetry.client.on_connected(lambda: b.connects.append(time.monotonic()))
    telemetry.status("online", "v1")
    updater.start()
    return b


def dist(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "median": statistics.median(ordered),
        "p95": p95,
        "max": ordered[-1],
        "min": ordered[0],
    }


def peak(events: list[Event], start: float) -> tuple[int, float]:
    """Requests in the busiest 100 ms bucket, and over how many seconds they spread."""
    if not events:
        return 0, 0.0
    buckets = Counter(int((t - start) / BUCKET_S) for t, *_ in events)
    return max(buckets.values()), events[-1][0] - events[0][0]
