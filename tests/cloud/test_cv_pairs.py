"""Out-of-sample distillation: a teacher per pair of folds teaches each student only the
images it never saw, and never saw the student's held-out fold either."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recyclops.cloud import fit
from recyclops.cloud.crossval import CrossValError, Distill, assign_folds, run_crossval
from recyclops.cloud.cv_distill import (
    DistillError,
    pair_file,
    pairs_for,
    save_soft,
    student_targets,
)
from recyclops.cloud.cv_pairs import format_pairs, run_pair_teachers
from recyclops.cloud.dataset import dataset_from_folders
from recyclops.shared.config import TrainConfig

from .test_crossval import CATS, shapes_folder
from .test_cv_distill import SHAS, quick_shapes

# a, b, c are in folds 0, 1, 2; the student of fold 0 trains on b and c
FOLD_OF = dict(zip(SHAS, [0, 1, 2], strict=True))


def _pair(out: Path, j: int, k: int, probs: list[list[float]], trained: list[str]) -> None:
    save_soft(pair_file(out, j, k), f"key-{j}{k}", SHAS, trained, CATS, np.array(probs))


def test_pairs_teach_only_the_fold_they_did_not_see(tmp_path: Path) -> None:
    assert pairs_for([0], 3) == [(0, 1), (0, 2)]
    assert pairs_for([0, 1, 2], 3) == [(0, 1), (0, 2), (1, 2)]
    t = tmp_path / "t"
    _pair(t, 0, 1, [[0.3, 0.3, 0.4], [0.1, 0.7, 0.2], [0.5, 0.5, 0]], [SHAS[2]])
    _pair(t, 2, 0, [[0.2, 0.2, 0.6], [0, 0, 1], [0.6, 0.2, 0.2]], [SHAS[1]])
    labels = np.array([0, 1, 2])
    got = student_targets([t], 0, SHAS, labels, CATS, SHAS[1:], 0.5, fold_of=FOLD_OF)
    student_fold0 = np.array(
        [
            [1, 0, 0],  # the held-out image never trains: its label, no teacher
            0.5 * np.eye(3)[1] + 0.5 * np.array([0.1, 0.7, 0.2]),  # from pair 0-1
            0.5 * np.eye(3)[2] + 0.5 * np.array([0.6, 0.2, 0.2]),  # from pair 0-2
        ]
    )
    np.testing.assert_allclose(got, student_fold0, atol=1e-6)
    # fold 1's student needs pair 1-2, which was not trained
    with pytest.raises(DistillError, match=r"pair-1-2.*pair of folds 2 and 1.*--teach-pairs"):
        student_targets([t], 1, SHAS, labels, CATS, [SHAS[0], SHAS[2]], 0.5, fold_of=FOLD_OF)


def test_a_pair_that_saw_what_it_teaches_or_the_held_out_fold_is_refused(
    tmp_path: Path,
) -> None:
    labels = np.array([0, 1, 2])
    in_sample = tmp_path / "in"
    _pair(in_sample, 0, 1, np.eye(3).tolist(), [SHAS[1], SHAS[2]])  # saw fold 1
    _pair(in_sample, 0, 2, np.eye(3).tolist(), [SHAS[1]])
    with pytest.raises(DistillError, match="not out of sample"):
        student_targets([in_sample], 0, SHAS, labels, CATS, SHAS[1:], 1.0, fold_of=FOLD_OF)
    leaky = tmp_path / "leak"
    _pair(leaky, 0, 1, np.eye(3).tolist(), [SHAS[0], SHAS[2]])  # saw the held-out image
    _pair(leaky, 0, 2, np.eye(3).tolist(), [SHAS[1]])
    with pytest.raises(DistillError, match="leak the held-out fold"):
        student_targets([leaky], 0, SHAS, labels, CATS, SHAS[1:], 1.0, fold_of=FOLD_OF)


def test_pairs_need_three_folds(tmp_path: Path) -> None:
    root = shapes_folder(tmp_path, 4, seed=1)
    ds = dataset_from_folders(root, cache_dir=tmp_path / "cache")
    with pytest.raises(CrossValError, match="K - 2 folds"):
        run_pair_teachers(TrainConfig(), ds, tmp_path / "t", 2)


@pytest.mark.slow
def test_pair_teachers_train_blind_to_both_folds_and_teach_a_student(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, ds = quick_shapes(tmp_path)
    teacher = tmp_path / "teacher"
    result = run_pair_teachers(config, ds, teacher, 3, only=[0])
    assert [p["pair"] for p in result["pairs"]] == [[0, 1], [0, 2]]
    assert not pair_file(teacher, 1, 2).exists()  # fold 0's student does not need it
    assert "what the students are taught" in format_pairs(result)
    folds = assign_folds(ds, config, 3, config.validation_split)
    soft: dict[int, dict[str, np.ndarray]] = {}
    for j in (1, 2):
        other = 3 - j  # the fold this pair trained on
        with np.load(pair_file(teacher, 0, j)) as data:
            expected = folds.training(0) + folds.inner(0)
            assert sorted(data["trained"]) == sorted(s for s in expected if folds.fold[s] == other)
            np.testing.assert_allclose(data["probs"].sum(axis=1), 1, atol=1e-4)
            soft[j] = dict(zip(data["shas"].tolist(), data["probs"], strict=True))
    again = run_pair_teachers(config, ds, teacher, 3, only=[0])  # saved: nothing trains
    assert again["pairs"] == result["pairs"]

    seen: list[np.ndarray] = []
    real = fit.fit_cached

    def spy(parts: Any, cfg: TrainConfig, data: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(data.targets())
        return real(parts, cfg, data, *args, **kwargs)

    monkeypatch.setattr(fit, "fit_cached", spy)
    student = tmp_path / "student"
    run_crossval(config, ds, student, 3, only=[0], distill=Distill((teacher,), alpha=1.0))
    index = {c: i for i, c in enumerate(ds.categories)}
    images = folds.training(0) + folds.inner(0)  # the refit's rows
    assert len(seen) == 2 and len(seen[1]) == len(images)
    for s, target in zip(images, seen[1], strict=True):
        np.testing.assert_allclose(target, soft[folds.fold[s]][s], atol=1e-5)
        assert folds.fold[s] != 0 and target.shape == (len(index),)
    with pytest.raises(DistillError, match="pair of folds"):  # fold 1 needs pair 1-2
        run_crossval(config, ds, tmp_path / "s1", 3, only=[1], distill=Distill((teacher,)))


def test_a_pair_teacher_cannot_also_be_a_student(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from recyclops.app.cli import main

    args = ["evaluate", "--folders", str(tmp_path), "--teach-pairs", "--teachers", str(tmp_path)]
    assert main(args) != 0
    assert "--teach-pairs trains teachers" in capsys.readouterr().err
