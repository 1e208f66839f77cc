"""Distillation measured by cross-validation: a teacher run keeps each fold's probabilities,
a student trains each fold towards the teachers of that same fold, never another's."""

import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from recyclops.cloud import fit
from recyclops.cloud.crossval import Distill, assign_folds, run_crossval
from recyclops.cloud.cv_distill import DistillError, save_soft, soft_file, student_targets
from recyclops.cloud.dataset import Dataset, dataset_from_folders
from recyclops.shared.config import TrainConfig

from .helpers import TINY_TOML
from .test_crossval import CATS, shapes_folder

SHAS = ["a" * 64, "b" * 64, "c" * 64]


def _teacher(tmp_path: Path, name: str, probs: list[list[float]], trained: list[str]) -> Path:
    out = tmp_path / name
    save_soft(soft_file(out, 0), f"key-{name}", SHAS, trained, CATS, np.array(probs, np.float32))
    return out


def test_targets_mix_the_labels_with_the_mean_of_the_teachers(tmp_path: Path) -> None:
    trained = SHAS[:2]
    a = _teacher(tmp_path, "a", [[0.8, 0.2, 0], [0, 1, 0], [0, 0, 1]], trained)
    b = _teacher(tmp_path, "b", [[0.6, 0.2, 0.2], [0.2, 0.4, 0.4], [1, 0, 0]], trained)
    labels = np.array([0, 2, 2])
    order = [SHAS[1], SHAS[0], SHAS[2]]  # rows follow the student's order, not the teacher's
    got = student_targets([a, b], 0, order, labels[[1, 0, 2]], CATS, trained, alpha=0.5)
    mean = np.array([[0.1, 0.7, 0.2], [0.7, 0.2, 0.1], [0.5, 0, 0.5]])
    onehot = np.eye(3)[[2, 0, 2]]
    np.testing.assert_allclose(got, 0.5 * onehot + 0.5 * mean, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1, atol=1e-6)
    alone = student_targets([a], 0, SHAS, labels, CATS, trained, alpha=1.0)
    np.testing.assert_allclose(alone[0], [0.8, 0.2, 0], atol=1e-6)


def test_a_temperature_softens_each_teacher_before_the_mean(tmp_path: Path) -> None:
    probs = [[0.81, 0.18, 0.01], [0.01, 0.98, 0.01], [0.0, 0.0, 1.0]]
    t = _teacher(tmp_path, "t", probs, SHAS)
    got = student_targets([t], 0, SHAS, np.arange(3), CATS, SHAS, alpha=1.0, temperature=2.0)
    root = np.sqrt(np.array([0.81, 0.18, 0.01]))  # softmax(log p / 2) = sqrt(p), normalised
    np.testing.assert_allclose(got[0], root / root.sum(), atol=1e-6)
    assert got[2].argmax() == 2 and got[2, 2] == pytest.approx(1.0, abs=1e-4)
    same = student_targets([t], 0, SHAS, np.arange(3), CATS, SHAS, alpha=1.0, temperature=1.0)
    np.testing.assert_allclose(same, probs, atol=1e-6)
    with pytest.raises(DistillError, match="temperature"):
        student_targets([t], 0, SHAS, np.arange(3), CATS, SHAS, alpha=1.0, temperature=0.0)


def test_a_teacher_of_other_images_or_classes_is_refused(tmp_path: Path) -> None:
    """A teacher that learnt from the student's held-out images would leak their labels."""
    fewer = _teacher(tmp_path, "fewer", np.eye(3).tolist(), SHAS[:1])  # never the held-out
    got = student_targets([fewer], 0, SHAS, np.arange(3), CATS, SHAS[:2], alpha=1.0)
    np.testing.assert_allclose(got, np.eye(3), atol=1e-6)
    saw_more = _teacher(tmp_path, "more", np.eye(3).tolist(), SHAS)
    with pytest.raises(DistillError, match="leak the held-out fold"):
        student_targets([saw_more], 0, SHAS, np.arange(3), CATS, SHAS[:2], alpha=1.0)
    with pytest.raises(DistillError, match="classes"):
        student_targets([saw_more], 0, SHAS, np.arange(3), ["x", "y", "z"], SHAS, 1.0)
    with pytest.raises(DistillError, match=r"no teacher probabilities for fold 1.*--save-soft"):
        student_targets([saw_more], 1, SHAS, np.arange(3), CATS, SHAS, alpha=1.0)
    with pytest.raises(DistillError, match=r"in \(0, 1\]"):
        student_targets([saw_more], 0, SHAS, np.arange(3), CATS, SHAS, alpha=0.0)
    soft_file(saw_more, 0).write_bytes(b"not an npz")
    with pytest.raises(DistillError, match="unreadable"):
        student_targets([saw_more], 0, SHAS, np.arange(3), CATS, SHAS, alpha=1.0)


def test_soft_targets_follow_a_refit_and_must_fit_the_images() -> None:
    from recyclops.cloud.fit import SplitArrays

    x = np.zeros((3, 2, 2, 3), np.uint8)
    soft = np.full((2, 3), 1 / 3, np.float32)
    data = SplitArrays(x[:2], np.array([0, 1]), x[2:], np.array([2]), 3, soft)
    merged = data.merged()  # the validation image joins on its label
    np.testing.assert_allclose(merged.targets(), np.array([[1 / 3] * 3, [1 / 3] * 3, [0, 0, 1]]))
    with pytest.raises(ValueError, match="do not match"):
        SplitArrays(x[:2], np.array([0, 1]), x[2:], np.array([2]), 3, soft[:1]).targets()


def test_distillation_flags_without_teachers_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from recyclops.app.cli import main

    for flag in ("--distill", "--distill-temperature"):
        assert main(["evaluate", "--folders", str(tmp_path), flag, "0.7"]) != 0
        assert "need --teachers" in capsys.readouterr().err


def test_teacher_probabilities_are_the_models_own_mean_over_its_views() -> None:
    """What a teacher saves from the cached activations is what its model says on the pixels
    of each fixed view, averaged: no view skipped, none from another model."""
    from recyclops.cloud.augment import fixed_view
    from recyclops.cloud.cv_fold import FoldInputs, view_probs
    from recyclops.cloud.fit import SplitArrays, compute_features, predict
    from recyclops.cloud.model import build_parts

    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    y = np.arange(6) % 3
    config = TrainConfig(
        image_size=32, weights="none", fine_tune_layers=20, augment_views=3, rotation=0.2
    )
    parts = build_parts(config, 3)
    data = SplitArrays(images, y, images[:0], y[:0], 3)
    features = compute_features(parts, config, data, need_cut=True)
    ds = SimpleNamespace(categories=CATS)  # view_probs reads the class count only
    got = view_probs(FoldInputs(ds, parts, features, images, y), tune=True)
    model = parts.full()
    per_view = [predict(model, fixed_view(images, config, v)) for v in range(3)]
    assert not np.allclose(per_view[0], per_view[1], atol=1e-3)  # the views do differ
    np.testing.assert_allclose(got, np.mean(per_view, axis=0), atol=5e-3)  # float16 cache


def quick_shapes(tmp_path: Path) -> tuple[TrainConfig, Dataset]:
    """The tiny recipe with a refit, seconds a fold, on 16 synthetic shapes per class."""
    root = shapes_folder(tmp_path, 16, seed=7)
    tiny = tomllib.loads(TINY_TOML.read_text())["train"]
    quick = {"epochs": 2, "fine_tune_epochs": 1, "representative_images": 16, "refit": True}
    config = TrainConfig.model_validate({**tiny, **quick, "qat_epochs": 0})
    return config, dataset_from_folders(root, cache_dir=tmp_path / "cache")


@pytest.mark.slow
def test_a_student_fold_trains_towards_its_own_folds_teacher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, ds = quick_shapes(tmp_path)
    teacher = tmp_path / "teacher"
    run_crossval(config, ds, teacher, 2, distill=Distill(save_soft=True))
    folds = assign_folds(ds, config, 2, config.validation_split)
    soft = {}
    for f in range(2):
        with np.load(soft_file(teacher, f)) as data:
            # the refit is the teacher: it trained on the fold's training and inner images
            assert sorted(data["trained"]) == sorted(folds.training(f) + folds.inner(f))
            assert set(data["shas"]) == set(folds.labels)
            np.testing.assert_allclose(data["probs"].sum(axis=1), 1, atol=1e-4)
            soft[f] = dict(zip(data["shas"].tolist(), data["probs"], strict=True))

    seen: list[tuple[int, np.ndarray, np.ndarray]] = []
    real = fit.fit_cached

    def spy(parts: Any, cfg: TrainConfig, data: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append((len(seen), data.y_train, data.targets()))
        return real(parts, cfg, data, *args, **kwargs)

    monkeypatch.setattr(fit, "fit_cached", spy)
    student = tmp_path / "student"
    result = run_crossval(config, ds, student, 2, distill=Distill(teachers=(teacher,), alpha=0.75))
    assert result["complete"] and result["distill"]["alpha"] == 0.75
    assert len(seen) == 4  # per fold: the selection run, then the refit
    index = {c: i for i, c in enumerate(ds.categories)}
    for (_, y, targets), f, images in zip(  # in order: fold 0 selection and refit, fold 1
        seen,
        [0, 0, 1, 1],
        [folds.training(0), folds.training(0) + folds.inner(0), folds.training(1), None],
        strict=True,
    ):
        if images is None:
            images = folds.training(1) + folds.inner(1)
        assert len(targets) == len(images) == len(y)
        assert list(y) == [index[ds.labels[s]] for s in images]
        expected = [0.25 * np.eye(3)[index[ds.labels[s]]] + 0.75 * soft[f][s] for s in images]
        np.testing.assert_allclose(targets, np.array(expected), atol=1e-5)
    # a teacher whose fold 1 trained on images of the 3-fold student's fold 1 (u in [1/3, 1/2))
    # cannot teach it; nothing trains first
    monkeypatch.setattr(fit, "fit_cached", None)
    with pytest.raises(DistillError, match="leak the held-out fold"):
        run_crossval(config, ds, tmp_path / "s2", 3, only=[1], distill=Distill((teacher,)))
