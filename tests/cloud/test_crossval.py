"""Cross-validation (``recyclops evaluate --cv K``): folds from the hash, the test split left
alone, the aggregate, and a real run on synthetic shapes (tiny config, LiteRT int8)."""

import hashlib
import json
import math
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from support.synthetic import shapes

from recyclops.app.cli import main
from recyclops.cloud import crossval
from recyclops.cloud.cli.evaluate import format_table
from recyclops.cloud.crossval import (
    RESULT_FILE,
    CrossValError,
    aggregate,
    assign_folds,
    run_crossval,
)
from recyclops.cloud.dataset import Dataset, dataset_from_folders
from recyclops.cloud.evaluate import Scores
from recyclops.shared.config import TrainConfig

from .helpers import TINY_TOML

CATS = ["red", "green", "blue"]


def shapes_folder(tmp_path: Path, per_class: int, seed: int) -> Path:
    """A <category>/*.jpg tree of synthetic shapes, as ``--folders`` reads it."""
    root = tmp_path / "shapes"
    for c, images in shapes(CATS, per_class, seed=seed).items():
        (root / c).mkdir(parents=True)
        for i, data in enumerate(images):
            (root / c / f"{i}.jpg").write_bytes(data)
    return root


def _fake(per_class: dict[str, int], salt: str = "") -> Dataset:
    """A data set of made-up hashes (fold assignment never opens an image)."""
    labels = {}
    for c, n in per_class.items():
        for i in range(n):
            labels[hashlib.sha256(f"{salt}{c}{i}".encode()).hexdigest()] = c
    return Dataset(Path("/nonexistent"), list(per_class), labels)


def _test_split(ds: Dataset, config: TrainConfig) -> set[str]:
    return set(ds.split(config.validation_split, config.test_split)["test"])


@pytest.mark.parametrize("k", [3, 5])
def test_folds_partition_the_non_test_images(k: int) -> None:
    config = TrainConfig()
    ds = _fake({"a": 400, "b": 250, "c": 40})
    folds = assign_folds(ds, config, k, 0.15)
    test = _test_split(ds, config)
    pool = set(ds.labels) - test
    held = [set(folds.held_out(f)) for f in range(k)]
    assert set().union(*held) == pool and sum(map(len, held)) == len(pool)  # a partition
    assert not test & set(folds.labels) and set(folds.test) == test
    for f in range(k):
        train, inner = set(folds.training(f)), set(folds.inner(f))
        assert train | inner | held[f] == pool
        assert not train & inner and not (train | inner) & held[f]
        assert not (train | inner | held[f]) & test


def test_folds_are_stratified_and_small_classes_reach_every_fold() -> None:
    k, config = 5, TrainConfig()
    ds = _fake({"big": 600, "mid": 150, "small": 7})
    folds = assign_folds(ds, config, k, 0.15)
    pool = set(ds.labels) - _test_split(ds, config)
    per_fold = folds.per_class(ds.categories)
    for c in ds.categories:
        counts = [fold[c] for fold in per_fold]
        n = sum(1 for s in pool if ds.labels[s] == c)
        expected, sd = n / k, math.sqrt(n * (1 / k) * (1 - 1 / k))
        assert sum(counts) == n
        assert min(counts) >= 1  # every class is scored in every fold
        if n >= 100:  # hash dealing is stratified in expectation: binomial spread only
            assert all(abs(m - expected) <= 4 * sd for m in counts), (c, counts)
    # the inner validation slice is about the requested share of every fold's training pool
    for f in range(k):
        share = len(folds.inner(f)) / (len(folds.inner(f)) + len(folds.training(f)))
        assert 0.10 < share < 0.20


def test_folds_are_stable_as_the_data_grows() -> None:
    config = TrainConfig()
    before = assign_folds(_fake({"a": 300, "b": 300}), config, 5, 0.15)
    grown = _fake({"a": 300, "b": 300})
    grown.labels.update(_fake({"a": 200, "b": 100}, salt="new").labels)
    after = assign_folds(grown, config, 5, 0.15)
    assert all(after.fold[s] == f for s, f in before.fold.items())
    assert before.inner_val <= after.inner_val


def test_too_few_images_or_folds_is_an_error() -> None:
    with pytest.raises(CrossValError, match="at least 2"):
        assign_folds(_fake({"a": 50}), TrainConfig(), 1, 0.15)
    with pytest.raises(CrossValError, match="cannot make"):
        assign_folds(_fake({"a": 4}), TrainConfig(), 5, 0.15)


def test_aggregate_is_the_mean_of_the_folds_and_pools_every_held_out_image() -> None:
    rng = np.random.default_rng(0)
    folds = []
    for _ in range(4):
        y = rng.integers(0, 3, 50)
        probs = np.eye(3)[np.where(rng.random(50) < 0.8, y, rng.integers(0, 3, 50))]
        s = Scores.of(probs, y, CATS)
        folds.append(
            {"int8": {"accuracy": s.accuracy, "per_class": s.per_class, "confusion": s.confusion}}
        )
    agg = aggregate(folds, CATS)
    accs = [f["int8"]["accuracy"] for f in folds]
    assert agg["mean"] == pytest.approx(np.mean(accs))
    assert agg["std"] == pytest.approx(np.std(accs, ddof=1))
    for c in CATS:
        per = [f["int8"]["per_class"][c] for f in folds]
        assert agg["per_class"][c]["mean"] == pytest.approx(np.mean(per))
    conf = np.sum([f["int8"]["confusion"] for f in folds], axis=0)
    assert agg["images"] == 200 and agg["pooled"] == pytest.approx(np.trace(conf) / 200)
    low, high = agg["pooled_ci95"]
    assert low < agg["pooled"] < high


def test_evaluate_parser_never_imports_tensorflow() -> None:
    code = (
        "import sys\n"
        "from recyclops.app.cli import build_parser\n"
        "a = build_parser('evaluate').parse_args(['evaluate', '--cv', '4', '--folds', '0,2'])\n"
        "assert a.cv == 4 and a.folds == [0, 2]\n"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.slow
def test_cross_validation_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = shapes_folder(tmp_path, 20, seed=3)
    out, cache = tmp_path / "cv", tmp_path / "cache"
    quick = ["--epochs", "2", "--fine-tune-epochs", "1", "--representative-images", "16"]
    argv = ["evaluate", "--cv", "2", "--folders", str(root), "--cache-dir", str(cache)]
    assert main([*argv, "--out", str(out), "-c", str(TINY_TOML), "-q", *quick]) == 0
    assert "2-fold cross-validation" in capsys.readouterr().out

    result = json.loads((out / RESULT_FILE).read_text())
    assert result["complete"] and len(result["folds"]) == 2
    accs = [f["int8"]["accuracy"] for f in result["folds"]]
    assert result["int8"]["mean"] == pytest.approx(np.mean(accs))
    ds = dataset_from_folders(root)
    config = TrainConfig.model_validate(result["config"])
    test = _test_split(ds, config)
    predicted = [p["sha256"] for p in result["predictions"]]
    assert len(predicted) == len(set(predicted)) == len(ds.labels) - len(test)
    assert not set(predicted) & test and set(predicted) | test == set(ds.labels)
    assert all(p["label"] == ds.labels[p["sha256"]] for p in result["predictions"])
    for p in result["predictions"]:  # the int8 probabilities behind each answer
        assert len(p["probs"]) == len(CATS) and sum(p["probs"]) == pytest.approx(1, abs=1e-2)
        assert p["int8"] == result["categories"][int(np.argmax(p["probs"]))]
    assert all("int8_probs" not in f and "probs" not in f for f in result["folds"])
    held = sum(sum(f["int8"]["support"].values()) for f in result["folds"])
    assert result["int8"]["images"] == len(predicted) == held
    assert all((out / "folds" / f"fold-{f}.json").is_file() for f in range(2))
    # a real run's output is what --compare reads: paired with itself, nothing is discordant
    assert main(["evaluate", "--compare", str(out), str(out)]) == 0
    total = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("ALL"))
    assert total.split()[1:4] == [str(len(predicted)), "0", "0"]
    # and what --ensemble reads: its saved probabilities, averaged with themselves
    assert main(["evaluate", "--ensemble", str(out), str(out)]) == 0
    shown = capsys.readouterr().out
    assert "mean of probabilities" in shown
    assert "right only there 0, only in the ensemble 0" in shown

    # the same recipe and data again: every fold is reused, nothing trains
    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("a saved fold was trained again")

    monkeypatch.setattr(crossval, "_run_folds", boom)
    again = run_crossval(config, dataset_from_folders(root, cache_dir=cache), out, 2)
    assert again["int8"]["mean"] == pytest.approx(result["int8"]["mean"])


@pytest.mark.slow
def test_cross_validation_with_refit_scores_both_models(tmp_path: Path) -> None:
    """``refit``: each fold's figure is a fresh model trained on training + inner images for
    the epochs the inner slice chose; the selected model is scored on the same images."""
    root = shapes_folder(tmp_path, 16, seed=5)
    tiny = tomllib.loads(TINY_TOML.read_text())["train"]
    quick = {"epochs": 3, "fine_tune_epochs": 2, "representative_images": 16, "refit": True}
    config = TrainConfig.model_validate({**tiny, **quick, "qat_epochs": 1})
    ds = dataset_from_folders(root, cache_dir=tmp_path / "cache")
    result = run_crossval(config, ds, tmp_path / "cv", 2)
    assert result["complete"] and result["selected"] is not None
    for fold in result["folds"]:
        images = fold["images"]
        assert fold["refit"]["images"] == images["training"] + images["inner_val"]
        chosen = {s["stage"]: s["best_epochs"] for s in fold["stages"]}
        assert fold["refit"]["epochs"] == [max(1, chosen["head"]), chosen.get("fine_tune", 0)]
        for stage in fold["stages"]:  # the validation curve, one value per epoch trained
            assert len(stage["val_accuracy"]) == stage["epochs"]
            # the best so far (fine-tuning's may still be the head's)
            assert max(stage["val_accuracy"]) <= stage["best_val_accuracy"] + 1e-4
        assert max(fold["stages"][0]["val_accuracy"]) == pytest.approx(
            fold["stages"][0]["best_val_accuracy"], abs=1e-4
        )
        assert fold["selected"]["int8"]["support"] == fold["int8"]["support"]
        assert "int8_probs" not in fold["selected"] and "int8_probs" not in fold["before_qat"]
        assert fold["seconds"]["refit"] > 0
        # quantisation-aware epochs for the refit model, the one scored
        assert fold["qat"]["epochs"] == 1 and fold["qat"]["images"] == fold["refit"]["images"]
    preds = result["predictions"]
    assert all(p["int8_selected"] in CATS and p["int8_before_qat"] in CATS for p in preds)
    for agg, key in (
        (result["int8"], "int8"),
        (result["selected"]["int8"], "int8_selected"),
        (result["before_qat"]["int8"], "int8_before_qat"),  # the refit model, paired
    ):
        right = sum(p[key] == p["label"] for p in preds)
        assert agg["pooled"] == pytest.approx(right / len(preds))
    only_before = sum(p["int8_before_qat"] == p["label"] != p["int8"] for p in preds)
    assert f"{only_before} images right only before" in format_table(result)


@pytest.mark.slow
def test_cross_validation_of_the_pixels_pipeline_trains_on_pixels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pipeline = "pixels"`` is measured as ``train`` runs it: every fold (and its refit)
    trains the whole model on its images with live augmentation, nothing is cached, and the
    float figure is the full model on the held-out pixels."""
    from recyclops.cloud import fit

    root = shapes_folder(tmp_path, 12, seed=7)
    calls: list[tuple[int, bool]] = []
    real = fit.fit_pixels

    def spy(parts, config, data, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append((len(data.y_train), kwargs.get("select", True)))
        return real(parts, config, data, *args, **kwargs)

    def no_cache(*args: object, **kwargs: object) -> None:
        raise AssertionError("the pixels pipeline computed cached activations")

    from recyclops.cloud import convert, cv_fold

    # the model each scoring exports, run on the raw held-out pixels, and what was scored
    exported: list[np.ndarray] = []
    scored: list[np.ndarray] = []
    real_export = convert.export_int8

    def export_spy(model, calibration, images=None, **kwargs):  # type: ignore[no-untyped-def]
        exported.append(np.asarray(model(images.astype(np.float32))))
        return real_export(model, calibration, images, **kwargs)

    class ScoresSpy(Scores):
        @classmethod
        def of(cls, probs: np.ndarray, y: np.ndarray, categories: list[str]) -> Scores:
            scored.append(np.asarray(probs, np.float32))
            return Scores.of(probs, y, categories)

    monkeypatch.setattr(fit, "fit_pixels", spy)
    monkeypatch.setattr(fit, "compute_features", no_cache)
    monkeypatch.setattr(convert, "export_int8", export_spy)
    monkeypatch.setattr(cv_fold, "Scores", ScoresSpy)
    tiny = tomllib.loads(TINY_TOML.read_text())["train"]
    quick = {"epochs": 2, "fine_tune_epochs": 1, "representative_images": 16}
    config = TrainConfig.model_validate(
        {**tiny, **quick, "pipeline": "pixels", "refit": True, "mixup": 0.2}
    )
    ds = dataset_from_folders(root, cache_dir=tmp_path / "cache")
    result = run_crossval(config, ds, tmp_path / "cv", 2)
    assert result["complete"] and result["config"]["pipeline"] == "pixels"
    sizes = result["fold_sizes"]
    # per fold: the selection run on its training images, then the refit on training + inner
    assert calls == [
        x for s in sizes for x in ((s["training"], True), (s["training"] + s["inner_val"], False))
    ]
    preds = result["predictions"]
    assert len(preds) == sum(s["held_out"] for s in sizes)
    right = sum(p["int8"] == p["label"] for p in preds)
    assert result["int8"]["pooled"] == pytest.approx(right / len(preds))
    # the float figure is the exported model's own output on the raw 0..255 pixels (it
    # normalises them itself; normalised twice, it once scored 26% beside 90% int8). Each
    # scoring: int8 first, then float; one in the selection run and one in the refit per fold
    assert len(exported) == 2 * len(sizes) and len(scored) == 2 * len(exported)
    for model_out, float_scored in zip(exported, scored[1::2], strict=True):
        np.testing.assert_allclose(float_scored, model_out, atol=1e-5)


def test_a_fold_trains_the_same_alone_or_after_another(tmp_path: Path) -> None:
    """A resumed run repeats itself: fold 1 run alone gives the same int8 probabilities as
    fold 1 run after fold 0 in the same process (Dropout's seed state is reset per fold,
    not carried over from the fold before)."""
    root = shapes_folder(tmp_path, 12, seed=9)
    tiny = tomllib.loads(TINY_TOML.read_text())["train"]
    quick = {"epochs": 3, "fine_tune_epochs": 2, "representative_images": 16, "dropout": 0.5}
    config = TrainConfig.model_validate({**tiny, **quick})
    ds = dataset_from_folders(root, cache_dir=tmp_path / "cache")
    alone = run_crossval(config, ds, tmp_path / "alone", 2, only=[1])
    after = run_crossval(config, ds, tmp_path / "after", 2)
    probs = [
        {p["sha256"]: p["probs"] for p in run["predictions"] if p["fold"] == 1}
        for run in (alone, after)
    ]
    assert probs[0] and probs[0] == probs[1]
