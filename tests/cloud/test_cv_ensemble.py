"""``recyclops evaluate --ensemble``: what several cross-validation runs score together."""

import json
from pathlib import Path

import pytest

from recyclops.app.cli import main
from recyclops.cloud.crossval import FOLDS_DIR, RESULT_FILE
from recyclops.cloud.cv_compare import CompareError, load_run
from recyclops.cloud.cv_ensemble import ensemble

CATS = ["glass", "metal"]
OTHER = {"glass": "metal", "metal": "glass"}
N = 20


def _label(i: int) -> str:
    return CATS[i % 2]


def _write_run(
    out: Path, answers: dict[int, str], probs: dict[int, list[float]] | None = None, shift: int = 0
) -> Path:
    """Fold files as ``run_crossval`` writes them; image i answered ``answers[i]`` (default:
    right), with saved probabilities where ``probs`` gives them for every image."""
    rows = []
    for i in range(N):
        row = {
            "sha256": f"{i:064x}",
            "fold": (i + shift) % 2,
            "label": _label(i),
            "int8": answers.get(i, _label(i)),
        }
        if probs is not None:
            row["probs"] = probs[i]
        rows.append(row)
    (out / FOLDS_DIR).mkdir(parents=True)
    for f in range(2):
        fold = {"key": "k1", "fold": f, "predictions": [r for r in rows if r["fold"] == f]}
        (out / FOLDS_DIR / f"fold-{f}.json").write_text(json.dumps(fold))
    return out


def _wrong(*images: int) -> dict[int, str]:
    return {i: OTHER[_label(i)] for i in images}


def test_runs_without_probabilities_vote_and_a_tie_goes_to_the_first(tmp_path: Path) -> None:
    a = load_run(_write_run(tmp_path / "a", _wrong(0, 1, 2)))  # 17 right
    b = load_run(_write_run(tmp_path / "b", _wrong(0, 3, 4, 5)))  # 16 right
    c = load_run(_write_run(tmp_path / "c", _wrong(1, 3, 6)))  # 17 right
    result = ensemble([a, b, c])
    assert result["method"].startswith("majority vote")
    # two of three wrong only on 0, 1 and 3: the ensemble gets 17 of 20
    assert result["ensemble"]["correct"] == 17
    assert [m["int8"]["correct"] for m in result["members"]] == [17, 16, 17]
    assert result["any_right"]["correct"] == 20
    assert result["best_member"] == str(a.path)
    # against a: the ensemble alone right on image 2, a alone on image 3
    assert (result["against_best"]["only_new"], result["against_best"]["only_ref"]) == (1, 1)
    assert result["per_class"]["glass"]["correct"] + result["per_class"]["metal"]["correct"] == 17
    # two runs that disagree: the first one's answer stands
    tie = ensemble([b, a])
    assert tie["ensemble"]["correct"] == 16
    assert ensemble([a, b])["ensemble"]["correct"] == 17


def test_saved_probabilities_are_averaged(tmp_path: Path) -> None:
    """Image 0 (glass): a says metal by a hair, b says glass firmly. A vote would keep a's
    answer; the mean of probabilities is glass."""
    sure = {i: [0.9, 0.1] if _label(i) == "glass" else [0.1, 0.9] for i in range(N)}
    a = _write_run(tmp_path / "a", _wrong(0), {**sure, 0: [0.45, 0.55]})
    b = _write_run(tmp_path / "b", {}, {**sure, 0: [0.8, 0.2]})
    result = ensemble([load_run(a), load_run(b)])
    assert result["method"] == "mean of probabilities"
    assert result["ensemble"]["correct"] == N
    voted = ensemble([load_run(a), load_run(_write_run(tmp_path / "b_old", {}))])
    assert voted["method"].startswith("majority vote")
    assert voted["ensemble"]["correct"] == N - 1


def test_fewer_than_two_runs_or_runs_on_other_folds_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _write_run(tmp_path / "a", {})
    with pytest.raises(CompareError, match="at least two runs"):
        ensemble([load_run(a)])
    shifted = _write_run(tmp_path / "shifted", {}, shift=1)
    with pytest.raises(CompareError, match="other folds"):
        ensemble([load_run(a), load_run(shifted)])
    bad = _write_run(tmp_path / "bad", {}, {i: [1.0] for i in range(N)})
    with pytest.raises(CompareError, match="not one per category"):
        ensemble([load_run(a), load_run(bad)])
    renamed = _write_run(tmp_path / "renamed", {})
    result = json.loads((renamed / FOLDS_DIR / "fold-0.json").read_text())
    (renamed / RESULT_FILE).write_text(json.dumps({**result, "categories": CATS[::-1]}))
    with pytest.raises(CompareError, match="same categories"):
        ensemble([load_run(a), load_run(renamed)])
    assert main(["evaluate", "--ensemble", str(a)]) == 1
    assert "at least two runs" in capsys.readouterr().err


def test_the_command_prints_members_ensemble_and_bound(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = [
        _write_run(tmp_path / "a", _wrong(0, 1)),
        _write_run(tmp_path / "b", _wrong(0, 2)),
        _write_run(tmp_path / "c", _wrong(3)),
    ]
    assert main(["evaluate", "--ensemble", *map(str, runs)]) == 0
    out = capsys.readouterr().out
    assert "ensemble of 3 runs, majority vote" in out
    assert "ensemble: 95.0%" in out  # wrong only on image 0
    assert "at least one member right: 100.0%" in out
