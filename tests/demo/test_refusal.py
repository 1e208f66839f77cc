"""A model the blessing refuses never reaches the demo's bin, and the demo says why.

Training is replaced by a run folder with a refusing verdict (training itself is tested
elsewhere); everything around it — gather, review, setup, the decision — is the real code.
"""

import argparse
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recyclops.app.demo import cli, runner
from recyclops.app.demo.report import DemoSummary, read_verdict
from recyclops.cloud.blessing import Verdict
from recyclops.cloud.train import TrainResult
from recyclops.shared.manifest import FileEntry, InputSpec, ModelManifest
from recyclops.shared.store import LocalStore

REASON = "floor: int8 accuracy 31.0% is below the floor 59.8%"


def fake_run(run_dir: Path, gate: dict) -> TrainResult:  # type: ignore[type-arg]
    """A run as ``train`` returns it, with the given verdict and a minimal manifest."""
    model = run_dir / "model"
    model.mkdir(parents=True)
    manifest = ModelManifest(
        version=run_dir.name,
        created=datetime.now(UTC),
        categories=["a", "b"],
        input=InputSpec(height=32, width=32),
        files=[FileEntry(name="model.tflite", size=0, sha256="0" * 64)],
    )
    verdict = Verdict(gate["blessed"], gate["summary"], gate["reasons"], gate)
    verdict.save(run_dir)
    return TrainResult(run_dir, model / "manifest.json", manifest, model / "model.tflite", verdict)


def test_an_unblessed_model_is_not_published_and_the_demo_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def train(config, data_dir, runs_dir, **kwargs):  # type: ignore[no-untyped-def]
        gate = {
            "blessed": False,
            "reasons": [REASON],
            "summary": "NOT BLESSED",
            "int8": {"accuracy": 0.31, "interval": [0.24, 0.39], "images": 152},
            "float": {"accuracy": 0.33},
        }
        return fake_run(Path(runs_dir) / "v-refused", gate)

    monkeypatch.setattr("recyclops.cloud.train.train", train)
    published = []
    monkeypatch.setattr("recyclops.cloud.publish.publish", lambda *a, **k: published.append(a))
    work = tmp_path / "demo"
    args = argparse.Namespace(workdir=work, weights="none", timeout=30.0, verbose=0)
    assert cli.run(args) == 1

    out = capsys.readouterr().out
    assert f"the model was NOT blessed: {REASON}; the bin keeps no model" in out
    assert "31.0% right on the 152 test images" in out
    assert "[4/5] edge" not in out and not published
    assert not LocalStore(work / "store").exists("models/channels/stable.json")
    assert not (work / "edge").exists()  # no daemon was started


def test_the_verdict_fills_the_summary(tmp_path: Path) -> None:
    summary = DemoSummary(tmp_path)
    gate = {"blessed": False, "reasons": ["x"], "summary": "NOT BLESSED", "int8": {"images": 9}}
    read_verdict(gate, summary)
    assert not summary.blessed and summary.reasons == ["x"] and summary.test_images == 9
    assert summary.verdict == "NOT BLESSED"


def test_the_demo_trains_with_the_blessing_defaults() -> None:
    """The demo earns its blessing: none of the promotion rules is loosened for it."""
    from recyclops.shared.config import TrainConfig

    config = runner.train_config(runner.DemoOptions(Path("unused")))
    defaults = TrainConfig()
    rules = (
        "min_accuracy",
        "min_class_accuracy",
        "min_class_support",
        "significance",
        "max_drop",
        "int8_max_drop",
        "require",
        "golden_images",
        "golden_tolerance",
    )
    for rule in rules:
        assert getattr(config, rule) == getattr(defaults, rule), rule
    assert config.weights == "imagenet" and config.alpha == 1.0
