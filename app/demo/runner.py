"""The whole loop on one machine: gather → review → setup → train → publish → edge.

Runs on the embedded default, a local folder store; no broker, so the edge polls the
channel pointer. Every part runs through the same code as in production: the review pass
drives the review tool's ``ReviewSession``, the edge is the real daemon in a subprocess.
"""

import json
import logging
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomli_w

from recyclops.cloud.stats import wilson
from recyclops.shared.config import RecyclopsConfig, TrainConfig
from recyclops.shared.errors import RecyclopsError
from recyclops.shared.store import LocalStore

from .edge_run import EdgeProcess
from .report import (
    DemoSummary,
    NotBlessed,
    interval,
    pct,
    print_summary,
    quiet,
    read_verdict,
    refusal,
    say,
)
from .seed import Seeded, seed_store

if TYPE_CHECKING:
    from recyclops.cloud.train import TrainResult

logger = logging.getLogger(__name__)

DEVICE = "demo-bin"
CHANNEL = "stable"


@dataclass
class DemoOptions:
    workdir: Path
    weights: str = "imagenet"  # imagenet | none (random: runs, and is refused by the blessing)
    timeout: float = 300.0
    fps: float = 15.0
    quiet: bool = True  # TensorFlow's and the jobs' logging into <workdir>/demo.log


def train_config(opts: DemoOptions) -> TrainConfig:
    """Fast and good on 2 CPU cores: the frozen ImageNet base at its native 224 px, run
    once per fixed view (the image and two augmented copies), and a linear head with strong
    dropout on its pooled features (300 training images overfit in a few epochs). 30% of
    the images are the test split, so its figure has a usable interval (about ±7 points).
    The blessing's rules keep the defaults a fleet model gets: the demo earns its blessing."""
    return TrainConfig(
        weights=opts.weights,
        image_size=224,
        fine_tune=False,  # the frozen base: minutes, not tens of minutes, on 2 cores
        refit=False,  # the head stops early on validation and ships as chosen
        qat_epochs=0,  # pixel epochs through the whole base: minutes more on 2 cores
        epochs=40,
        batch_size=16,
        learning_rate=1e-3,
        dropout=0.5,
        label_smoothing=0.0,
        augment_views=3,
        early_stopping_patience=10,
        validation_split=0.1,
        test_split=0.3,
        representative_images=200,
        channel=CHANNEL,
    )


def describe_weights(config: TrainConfig) -> str:
    """Which file the base will load, for the narrative (the loader verifies it)."""
    if config.weights != "imagenet":
        return "none (random; expect the blessing to refuse the model)"
    from recyclops.cloud import weights

    found = weights.locate(config.alpha, config.image_size)
    if found is None:
        return f"ImageNet (not cached: Keras downloads it into {weights.cache_dir()})"
    return f"ImageNet, {found.origin}: {weights.describe(found.path)}"


def review(
    store: LocalStore, config: RecyclopsConfig, seeded: Seeded, summary: DemoSummary
) -> None:
    """A scripted reviewer on the review tool's own session object: it knows the truth,
    confirms right presses, corrects wrong ones, and once goes back (``w``) to show that a
    withdrawn decision must be made again."""
    from recyclops.console.session import ReviewSession

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
    """The whole loop; raises NotBlessed (after saying why) when the model may not serve."""
    t_start = time.monotonic()
    work = opts.workdir.resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    summary = DemoSummary(work, log=work / "demo.log")
    assert summary.log is not None
    with quiet(summary.log, opts.quiet):
        try:
            _run(opts, work, summary)
        except NotBlessed:
            summary.timings["total"] = round(time.monotonic() - t_start, 1)
            raise
    summary.timings["total"] = round(time.monotonic() - t_start, 1)
    print_summary(summary)
    return summary


def _run(opts: DemoOptions, work: Path, summary: DemoSummary) -> None:
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

    say("[3/5] setup, train, convert to int8, bless")
    from recyclops.cloud.setup import sync_dataset

    synced = sync_dataset(store, work / "data", names, progress=False)
    for line in synced.lines():
        say(f"  {line}")
    train_cfg = train_config(opts)
    summary.weights = describe_weights(train_cfg)
    say(
        f"  training: input {train_cfg.image_size}px, frozen base, linear head; "
        f"weights {summary.weights}"
    )
    from recyclops.cloud.train import train

    result = train(train_cfg, work / "data", work / "runs", store=store)
    run_dir = summary.run_dir = result.run_dir
    _read_run(result, train_cfg, summary)
    say(f"  run {run_dir.name}: {summary.split}")
    say(
        f"  int8 model: {pct(summary.int8_accuracy)} right on the {summary.test_images} test "
        f"images it never saw ({interval(summary.int8_interval)}); "
        f"float {pct(summary.float_accuracy)}"
    )
    if not summary.blessed:
        say(f"  {refusal(summary)}")
        raise NotBlessed(refusal(summary))
    say("  blessed by the promotion rules (the defaults every fleet model is judged by)")
    t = lap("setup+train", t)

    say("[4/5] edge: the daemon starts with no model, on a camera replaying the held-back frames")
    edge = EdgeProcess(["--config", str(edge_config(config, work, opts.fps))], work / "edge.log")
    try:
        ready = edge.wait_for(lambda e: e.get("event") == "ready", 60, "ready")
        if ready.get("live_view"):
            say(f"  live view: {ready['live_view']}")
        say(f"  publishing {summary.version} to channel '{CHANNEL}' (no broker: the bin polls)")
        from recyclops.cloud.publish import publish

        t_pub = time.monotonic()
        publish(run_dir, store, None, CHANNEL)
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
        summary.captured = _captured(store)
        say(
            f"  the bin also kept {summary.captured} frames it was unsure about by itself "
            "(automatic capture: they join the review queue)"
        )
    finally:
        code = edge.stop()
        say(f"  edge daemon stopped (exit {code})")
    lap("edge", t)


def _read_run(result: "TrainResult", config: TrainConfig, summary: DemoSummary) -> None:
    """The verdict, the version and the split sizes of a run."""
    from recyclops.cloud.dataset import load_dataset

    read_verdict(result.verdict.gate(), summary)
    summary.version = result.manifest.version
    splits = load_dataset(summary.workdir / "data").split(
        config.validation_split, config.test_split
    )
    summary.split = (
        f"{len(splits['train'])} train, {len(splits['val'])} validation, "
        f"{len(splits['test'])} test (by image hash: no test image is ever trained on)"
    )


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
    summary.replay_interval = wilson(right, len(got))
    summary.inference_ms = statistics.median(float(e["inference_ms"]) for e in got.values())
    summary.path_ms = statistics.median(float(e["path_ms"]) for e in got.values())
    lo, hi = summary.replay_interval
    say(
        f"  classified {len(got)} replayed frames: {right} right ({pct(summary.replay_accuracy)}, "
        f"95% interval {pct(lo)}–{pct(hi)}); "
        f"median inference {summary.inference_ms:.1f} ms, whole path {summary.path_ms:.1f} ms"
    )


def _captured(store: LocalStore) -> int:
    """Automatic captures uploaded so far (gathered records that carry ``capture``)."""
    count = 0
    for key in store.list(f"gathered/{DEVICE}/"):
        if key.endswith(".json") and json.loads(store.get(key)).get("capture"):
            count += 1
    return count


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
