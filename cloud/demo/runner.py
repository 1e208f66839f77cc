"""The whole loop on one machine: gather → review → setup → train → publish → edge.

Runs on the embedded default, a local folder store; no broker, so the edge polls the
channel pointer. Every part runs through the same code as in production: the review pass
drives the review tool's ``ReviewSession``, the edge is the real daemon in a subprocess.
"""

import json
import logging
import os
import shutil
import statistics
import time
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import tomli_w

from recyclops.shared.config import RecyclopsConfig, TrainConfig
from recyclops.shared.errors import RecyclopsError
from recyclops.shared.store import LocalStore

from .edge_run import EdgeProcess
from .seed import Seeded, seed_store

logger = logging.getLogger(__name__)

MNV2_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
DEVICE = "demo-bin"
CHANNEL = "stable"


@dataclass
class DemoOptions:
    workdir: Path
    weights: str = "auto"  # auto | imagenet | none
    tiny: bool = False  # the CI path: random weights, small input
    timeout: float = 300.0
    fps: float = 8.0


@dataclass
class DemoSummary:
    workdir: Path
    gathered: int = 0
    wrong_presses: int = 0
    corrected: int = 0
    run_dir: Path | None = None
    version: str = ""
    weights: str = ""
    float_accuracy: float | None = None
    int8_accuracy: float | None = None
    gate: str = ""
    update_seconds: float | None = None
    replay_accuracy: float | None = None
    replay_frames: int = 0
    inference_ms: float | None = None
    path_ms: float | None = None
    gathered_key: str = ""
    timings: dict[str, float] = field(default_factory=dict)


def say(text: str) -> None:
    print(text, flush=True)


def keras_cache_has_weights() -> bool:
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return (home / "models" / MNV2_FILE).is_file()


def train_config(opts: DemoOptions) -> tuple[TrainConfig, str]:
    """The fast configuration: frozen base, cached features; tiny when asked or offline."""
    weights = opts.weights
    if weights == "auto":
        weights = "imagenet" if keras_cache_has_weights() else "none"
        if weights == "none":
            say(
                "  ! MobileNetV2 ImageNet weights are not in the Keras cache "
                f"(~/.keras/models/{MNV2_FILE});\n"
                "    training from random weights instead: it runs, but expect low accuracy.\n"
                "    Go online once, or `make weights` where ../shared has them."
            )
    if opts.tiny or weights == "none":
        tiny = resources.files("recyclops.cloud") / "configs" / "tiny.toml"
        data = tomllib.loads(tiny.read_text())["train"]
        if not opts.tiny:  # real photos need a little more than the tiny shapes
            data.update(image_size=96, epochs=15)
        return TrainConfig(**data), "none (random)"
    config = TrainConfig(
        weights="imagenet",
        image_size=224,  # the cached ImageNet file is the 224 one
        fine_tune=False,  # the frozen base: minutes, not tens of minutes, on 2 cores
        epochs=40,
        batch_size=16,
        learning_rate=1e-3,
        dropout=0.2,
        augment_views=3,
        early_stopping_patience=8,
        validation_split=0.15,
        test_split=0.2,
        representative_images=100,
        # ~38 test images, ~6 per class: one image is 2.6 points overall and 16 in a class.
        # A fleet model keeps the defaults (1.5 and 5 points) on a real test split.
        gate_margin=6.0,
        gate_class_margin=34.0,
    )
    return config, "imagenet"


def review(
    store: LocalStore, config: RecyclopsConfig, seeded: Seeded, summary: DemoSummary
) -> None:
    """A scripted reviewer on the review tool's own session object: it knows the truth,
    confirms right presses, corrects wrong ones, and once goes back (``w``) to show that a
    withdrawn decision must be made again."""
    from recyclops.cloud.clean.session import ReviewSession

    with ReviewSession(
        store, config.categories, reviewer="demo-reviewer", flush_seconds=1.0
    ) as session:
        went_back = False
        while (item := session.current()) is not None:
            truth = seeded.truth[item.sha256]
            if item.gathered_label != truth:
                summary.corrected += 1
            session.decide(item.sha256, truth)
            if not went_back:
                session.back()  # withdraws it; the image comes back to be classified again
                went_back = True
                summary.corrected -= item.gathered_label != truth
        progress = session.progress()
        session_id = session.session_id
    say(
        f"  reviewed {progress.get('done', '?')} images in session {session_id}; "
        f"corrected {summary.corrected} wrong key presses (journal labels/{session_id}.jsonl)"
    )


def edge_config(config: RecyclopsConfig, work: Path, fps: float) -> Path:
    data = config.model_dump(mode="json", exclude_none=True)
    data["edge"].update(
        device_id=DEVICE,
        channel=CHANNEL,
        model_dir=str(work / "edge" / "models"),
        spool_dir=str(work / "edge" / "spool"),
        state_dir=str(work / "edge" / "state"),
    )
    data["edge"]["camera"].update(
        kind="replay", source=str(work / "replay"), fps=fps, at_end="loop"
    )
    data["edge"]["keypad"].update(kind="terminal")
    data["edge"]["classifier"].update(smoothing="none", window=1, threshold=0.0, threads=1)
    data["edge"]["updates"].update(poll_seconds=1.0)
    data["edge"]["live_view"].update(enabled=True, port=0)
    path = work / "edge.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def run_demo(opts: DemoOptions) -> DemoSummary:
    t_start = time.monotonic()
    work = opts.workdir.resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    summary = DemoSummary(work)
    store = LocalStore(work / "store")
    config = RecyclopsConfig(store={"url": store.url})
    names = config.category_names

    def lap(name: str, since: float) -> float:
        summary.timings[name] = round(time.monotonic() - since, 1)
        return time.monotonic()

    say(f"[1/5] gather: seeding {store.url} as if bin '{DEVICE}' had gathered by keypad")
    t = time.monotonic()
    seeded = seed_store(store, names, work / "replay", device=DEVICE)
    summary.gathered, summary.wrong_presses = len(seeded.truth), len(seeded.mistakes)
    say(
        f"  {summary.gathered} gathered images "
        f"({summary.wrong_presses} with the wrong key pressed); "
        f"{len(seeded.replay)} frames held back for the camera to replay"
    )
    t = lap("gather", t)

    say("[2/5] review: a scripted reviewer works through the review tool's queue")
    review(store, config, seeded, summary)
    t = lap("review", t)

    say("[3/5] setup, train, convert to int8, gate")
    from recyclops.cloud.setup import sync_dataset

    synced = sync_dataset(store, work / "data", names, progress=False)
    for line in synced.lines():
        say(f"  {line}")
    train_cfg, summary.weights = train_config(opts)
    say(
        f"  training: weights {summary.weights}, input {train_cfg.image_size}px, "
        f"fine-tuning {'on' if train_cfg.fine_tune else 'off (frozen base)'}"
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from recyclops.cloud.train import train

    run_dir = train(train_cfg, work / "data", work / "runs")
    summary.run_dir = run_dir
    gate = json.loads((run_dir / "gate.json").read_text())
    summary.gate = (
        "passed" if gate.get("passed") else "FAILED: " + "; ".join(gate.get("reasons", []))
    )
    manifest_path = next(run_dir.rglob("manifest.json"))
    manifest = json.loads(manifest_path.read_text())
    summary.version = manifest["version"]
    metrics = manifest.get("metrics", {})
    summary.float_accuracy = metrics.get("float_accuracy")
    summary.int8_accuracy = metrics.get("int8_accuracy")
    say(
        f"  run {run_dir}: float {_pct(summary.float_accuracy)}, "
        f"int8 {_pct(summary.int8_accuracy)} "
        f"on the test split; gate {summary.gate}"
    )
    t = lap("setup+train", t)

    say("[4/5] edge: the daemon starts with no model, on a camera replaying the held-back frames")
    edge = EdgeProcess(["--config", str(edge_config(config, work, opts.fps))], work / "edge.log")
    try:
        ready = edge.wait_for(lambda e: e.get("event") == "ready", 60, "ready")
        if ready.get("live_view"):
            say(f"  live view: {ready['live_view']}")
        say(f"  publishing {summary.version} to channel '{CHANNEL}' (no broker: the bin polls)")
        from recyclops.cloud.publish import publish

        passed = summary.gate == "passed"
        if not passed and not opts.tiny:
            raise RecyclopsError(
                f"the quality gate refused this model ({summary.gate}); not publishing"
            )
        if not passed:
            say("  ! gate failed; publishing anyway only because --tiny is a smoke run of the loop")
        t_pub = time.monotonic()
        publish(run_dir, store, None, CHANNEL, force=not passed)
        switched = edge.wait_for(lambda e: e.get("event") == "model", opts.timeout, "model switch")
        summary.update_seconds = round(time.monotonic() - t_pub, 2)
        say(
            f"  the bin switched to {switched.get('version')} by itself ({switched.get('via')}, "
            f"{summary.update_seconds} s after publish; backend {switched.get('backend')})"
        )
        _collect_replay(edge, seeded, summary, opts)
        say("  operator presses key 1 (cardboard) on the keypad")
        edge.press(config.categories[0].key)
        gathered = edge.wait_for(lambda e: e.get("event") == "gathered", 30, "gather")
        summary.gathered_key = _wait_uploaded(store, gathered["sha256"], 60)
        say(f"  gathered frame uploaded: {summary.gathered_key}")
    finally:
        code = edge.stop()
        say(f"  edge daemon stopped (exit {code})")
    lap("edge", t)
    summary.timings["total"] = round(time.monotonic() - t_start, 1)
    print_summary(summary)
    return summary


def _collect_replay(
    edge: EdgeProcess, seeded: Seeded, summary: DemoSummary, opts: DemoOptions
) -> None:
    """One pass over every replayed frame with the new model: the bin's own accuracy."""
    truth = {path.name: label for path, label in seeded.replay}
    got: dict[str, dict[str, Any]] = {}

    def is_new_frame(event: dict[str, Any]) -> bool:
        if event.get("event") != "classification" or event.get("model_version") != summary.version:
            return False
        name = Path(str(event.get("source", ""))).name
        if name in truth and name not in got:
            got[name] = event
        return len(got) == len(truth)

    edge.wait_for(is_new_frame, max(60.0, 3 * len(truth) / opts.fps), "a full replay pass")
    right = sum(1 for name, e in got.items() if e.get("raw_label") == truth[name])
    summary.replay_frames = len(got)
    summary.replay_accuracy = right / len(got)
    summary.inference_ms = statistics.median(float(e["inference_ms"]) for e in got.values())
    summary.path_ms = statistics.median(float(e["path_ms"]) for e in got.values())
    say(
        f"  classified {len(got)} replayed frames: "
        f"{right} right ({_pct(summary.replay_accuracy)}); "
        f"median inference {summary.inference_ms:.1f} ms, whole path {summary.path_ms:.1f} ms"
    )


def _wait_uploaded(store: LocalStore, sha: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for key in store.list(f"gathered/{DEVICE}/"):
            if key.endswith(f"/{sha}.json") and store.exists(f"images/{sha}.jpg"):
                return key
        time.sleep(0.2)
    raise RecyclopsError(
        f"the gathered frame {sha[:12]} did not reach the store in {timeout:.0f} s"
    )


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def print_summary(s: DemoSummary) -> None:
    say("\n[5/5] summary")
    rows = [
        ("model version", s.version),
        ("weights", s.weights),
        ("test split (float / int8)", f"{_pct(s.float_accuracy)} / {_pct(s.int8_accuracy)}"),
        ("quality gate", s.gate),
        ("replayed frames on the bin", f"{_pct(s.replay_accuracy)} of {s.replay_frames}"),
        (
            "per-frame latency (median)",
            f"{s.inference_ms or 0:.1f} ms inference, {s.path_ms or 0:.1f} ms path",
        ),
        ("publish → serving (polling)", f"{s.update_seconds} s"),
        ("gathered frame", s.gathered_key),
        ("time", ", ".join(f"{k} {v:.0f}s" for k, v in s.timings.items())),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        say(f"  {key:<{width}}  {value}")
    w = s.workdir
    say(f"""
  on disk:
    store (images/, gathered/, labels/, models/)  {w / "store"}
    data set                                       {w / "data"}
    training run (config, CSV, TensorBoard, card)  {s.run_dir}
    edge models, spool, status.json, log           {w / "edge"}, {w / "edge.log"}
  next:
    .venv/bin/tensorboard --logdir {w / "runs"}
    recyclops clean --config {w / "edge.toml"}       # review in a browser (127.0.0.1:8080)
    recyclops edge classify --model {w / "edge" / "models" / "current"} {w / "replay" / "000.jpg"}
    make test · make bench · docs/edge.md for a Raspberry Pi · docs/ec2.md for GPU training""")
