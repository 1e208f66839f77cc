"""What the demo prints, and how it keeps everything else off the terminal.

The demo's output is its own narrative. TensorFlow, absl, the TFLite converter and our own
INFO logging all write to stderr (partly from C++, where no Python filter reaches), so for
the run the process's stderr goes to a log file in the work folder; the demo says where.
"""

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recyclops.shared.errors import RecyclopsError

logger = logging.getLogger(__name__)


class NotBlessed(RecyclopsError):
    """The trained model failed the promotion rules: the demo publishes nothing."""


@dataclass
class DemoSummary:
    workdir: Path
    gathered: int = 0
    wrong_presses: int = 0
    corrected: int = 0
    run_dir: Path | None = None
    version: str = ""
    weights: str = ""
    split: str = ""
    float_accuracy: float | None = None
    int8_accuracy: float | None = None
    int8_interval: tuple[float, float] | None = None
    test_images: int = 0
    blessed: bool = False
    verdict: str = ""
    reasons: list[str] = field(default_factory=list)
    update_seconds: float | None = None
    replay_accuracy: float | None = None
    replay_interval: tuple[float, float] | None = None
    replay_frames: int = 0
    inference_ms: float | None = None
    path_ms: float | None = None
    gathered_key: str = ""
    captured: int = 0
    log: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)


def say(text: str) -> None:
    print(text, flush=True)


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def interval(iv: tuple[float, float] | None) -> str:
    return "" if iv is None else f"95% interval {pct(iv[0])}–{pct(iv[1])}"


def read_verdict(gate: Mapping[str, Any], summary: DemoSummary) -> None:
    """Fill the summary from a run's verdict (as gate.json holds it: ``Verdict.gate()``)."""
    summary.blessed = bool(gate["blessed"])
    summary.reasons = [str(r) for r in gate.get("reasons", [])]
    summary.verdict = str(gate.get("summary", ""))
    int8 = gate.get("int8") or {}
    if isinstance(int8, dict):
        summary.int8_accuracy = int8.get("accuracy")
        if int8.get("interval"):
            lo, hi = int8["interval"]
            summary.int8_interval = (float(lo), float(hi))
        summary.test_images = int(int8.get("images") or gate.get("test_images") or 0)
    flt = gate.get("float") or {}
    if isinstance(flt, dict):
        summary.float_accuracy = flt.get("accuracy")


def refusal(summary: DemoSummary) -> str:
    reasons = "; ".join(summary.reasons) or "no reason recorded"
    return f"the model was NOT blessed: {reasons}; the bin keeps no model (nothing published)"


@contextlib.contextmanager
def quiet(log_path: Path, enabled: bool = True) -> Iterator[None]:
    """Send the process's stderr (fd 2: Python logging, warnings, TensorFlow's C++ logs,
    the converter) to ``log_path`` for the duration; the demo's own lines go to stdout."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    if not enabled:
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from absl import logging as absl_logging

            absl_logging.set_verbosity(absl_logging.ERROR)
        except ImportError:  # the edge-only install has no absl; nothing to silence
            pass
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(log_path, "ab") as log:
                os.dup2(log.fileno(), 2)
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def print_summary(s: DemoSummary) -> None:
    say("\n[5/5] summary")
    rows = [
        ("model version", s.version),
        ("weights", s.weights),
        ("split (images)", s.split),
        (
            "test split, int8",
            f"{pct(s.int8_accuracy)} of {s.test_images} ({interval(s.int8_interval)}); "
            f"float {pct(s.float_accuracy)}",
        ),
        ("blessing", "blessed" if s.blessed else "NOT blessed"),
        (
            "replayed frames on the bin",
            f"{pct(s.replay_accuracy)} of {s.replay_frames} ({interval(s.replay_interval)})",
        ),
        (
            "per-frame latency (median)",
            f"{s.inference_ms or 0:.1f} ms inference, {s.path_ms or 0:.1f} ms path",
        ),
        ("publish → serving (polling)", f"{s.update_seconds} s"),
        ("gathered frame", s.gathered_key),
        ("uncertain frames kept by the bin", f"{s.captured} (automatic capture, for review)"),
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
    everything TensorFlow and the jobs logged      {s.log}
  next:
    .venv/bin/tensorboard --logdir {w / "runs"}
    recyclops clean --config {w / "edge.toml"}       # review in a browser (127.0.0.1:8080)
    recyclops edge classify --model {w / "edge" / "models" / "current"} {w / "replay" / "000.jpg"}
    make test · make bench · docs/edge.md for a Raspberry Pi · docs/ec2.md for GPU training""")
