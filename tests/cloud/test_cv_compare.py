"""``recyclops evaluate --compare``: two cross-validation runs paired image by image."""

import gzip
import json
from pathlib import Path

import pytest

from recyclops.app.cli import main
from recyclops.cloud.crossval import FOLDS_DIR, RESULT_FILE
from recyclops.cloud.cv_compare import CompareError, compare, load_run
from recyclops.cloud.stats import binom_tail

CATS = ["glass", "metal"]
SHAS = [f"{i:064x}" for i in range(40)]


def _label(i: int) -> str:
    return CATS[i % 2]


def _write_run(
    out: Path, right: set[int], *, folds: int = 2, finished: bool = True, shift: int = 0
) -> Path:
    """A run as ``run_crossval`` leaves it: one file per fold, then ``crossval.json``."""
    wrong = {"glass": "metal", "metal": "glass"}
    rows = [
        {
            "sha256": s,
            "fold": (i + shift) % folds,
            "label": _label(i),
            "int8": _label(i) if i in right else wrong[_label(i)],
        }
        for i, s in enumerate(SHAS)
    ]
    (out / FOLDS_DIR).mkdir(parents=True)
    for f in range(folds):
        fold = {"key": "k1", "fold": f, "predictions": [r for r in rows if r["fold"] == f]}
        (out / FOLDS_DIR / f"fold-{f}.json").write_text(json.dumps(fold))
    if finished:
        result = {"key": "k1", "k": folds, "categories": CATS, "predictions": rows}
        (out / RESULT_FILE).write_text(json.dumps(result))
    return out


def test_counts_only_the_images_one_run_alone_gets_right(tmp_path: Path) -> None:
    both = set(range(30))
    ref = load_run(_write_run(tmp_path / "ref", both | {30, 31}))  # 32 right
    new = load_run(_write_run(tmp_path / "new", both | {32, 33, 34, 35, 36}))  # 35 right
    result = compare([(ref, new)])
    total = result["total"]
    assert (total["images"], total["only_ref"], total["only_new"]) == (40, 2, 5)
    assert total["delta_points"] == pytest.approx(100 * 3 / 40)
    assert total["p_better"] == pytest.approx(binom_tail(5, 7))
    assert total["p_worse"] == pytest.approx(binom_tail(2, 7))
    # 30, 32, 34, 36 are glass (even); 31, 33, 35 metal
    glass, metal = result["per_class"]["glass"], result["per_class"]["metal"]
    assert (glass["only_ref"], glass["only_new"]) == (1, 3)
    assert (metal["only_ref"], metal["only_new"]) == (1, 2)
    pair = result["pairs"][0]
    assert pair["ref_int8"]["correct"] == 32 and pair["new_int8"]["correct"] == 35
    assert pair["folds"] == [0, 1]


def test_pairs_add_their_discordant_counts(tmp_path: Path) -> None:
    base = set(range(30))
    pairs = [
        (
            load_run(_write_run(tmp_path / f"ref{seed}", base | {30})),
            load_run(_write_run(tmp_path / f"new{seed}", base | {31, 32, 33})),
        )
        for seed in (1, 2)
    ]
    one = compare(pairs[:1])["total"]
    two = compare(pairs)["total"]
    assert (two["only_ref"], two["only_new"]) == (2 * one["only_ref"], 2 * one["only_new"])
    assert two["p_better"] == pytest.approx(binom_tail(6, 8))
    assert two["p_better"] < one["p_better"]


def test_a_run_cut_off_after_some_folds_counts_on_those_folds(tmp_path: Path) -> None:
    ref = load_run(_write_run(tmp_path / "ref", set(range(20))))
    partial = _write_run(tmp_path / "new", set(range(40)), finished=False)
    (partial / FOLDS_DIR / "fold-1.json").unlink()
    result = compare([(ref, load_run(partial))])
    pair = result["pairs"][0]
    assert pair["folds"] == [0] and result["total"]["images"] == 20
    # fold 0 is the even images; the reference gets 0..19 right, so 10 of them
    assert (result["total"]["only_ref"], result["total"]["only_new"]) == (0, 10)


def test_runs_on_other_folds_or_missing_runs_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = _write_run(tmp_path / "ref", set(range(20)))
    other = _write_run(tmp_path / "other", set(range(20)), shift=1)
    with pytest.raises(CompareError, match="other folds"):
        compare([(load_run(ref), load_run(other))])
    with pytest.raises(CompareError, match="no such cross-validation folder"):
        load_run(tmp_path / "nothing")
    (tmp_path / "empty" / FOLDS_DIR).mkdir(parents=True)
    with pytest.raises(CompareError, match="neither"):
        load_run(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / RESULT_FILE).write_text("{not json")
    assert main(["evaluate", "--compare", str(ref), str(tmp_path / "bad")]) == 1
    assert "unreadable" in capsys.readouterr().err


def test_the_command_prints_the_pairs_and_their_sum(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = [_write_run(tmp_path / n, set(range(30 + i))) for i, n in enumerate("abcd")]
    argv = ["evaluate", "--compare", str(runs[0]), str(runs[1])]
    assert main([*argv, "--compare", str(runs[2]), str(runs[3])]) == 0
    out = capsys.readouterr().out
    assert "pair 1:" in out and "pair 2:" in out and "all pairs summed" in out
    total = next(line for line in out.splitlines() if line.startswith("ALL"))
    assert total.split()[1:4] == ["80", "0", "2"]


def test_fold_files_newer_than_the_result_count_and_other_recipes_do_not(tmp_path: Path) -> None:
    """A run resumed and cut off again: crossval.json holds fold 0, the fold files both."""
    out = _write_run(tmp_path / "run", set(range(40)))
    result = json.loads((out / RESULT_FILE).read_text())
    result["predictions"] = [r for r in result["predictions"] if r["fold"] == 0]
    (out / RESULT_FILE).write_text(json.dumps(result))
    stale = json.loads((out / FOLDS_DIR / "fold-1.json").read_text())
    (out / FOLDS_DIR / "fold-7.json").write_text(json.dumps({**stale, "key": "other"}))
    run = load_run(out)
    assert run.folds == [0, 1] and len(run.predicted) == 40
    assert load_run(out / RESULT_FILE).folds == [0]


def test_a_kept_gzipped_result_pairs_as_its_folder_did(tmp_path: Path) -> None:
    """docs/cv keeps a run's crossval.json gzipped, so it can be paired after /tmp is gone."""
    ref = _write_run(tmp_path / "ref", set(range(25)))
    kept = tmp_path / "ref.json.gz"
    kept.write_bytes(gzip.compress((ref / RESULT_FILE).read_bytes()))
    new = load_run(_write_run(tmp_path / "new", set(range(40))))
    assert compare([(load_run(kept), new)])["total"] == compare([(load_run(ref), new)])["total"]
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(kept.read_bytes()[:-20])
    with pytest.raises(CompareError, match=r"cut\.json\.gz: unreadable"):
        load_run(cut)


def test_the_kept_runs_load_and_pair() -> None:
    """docs/cv: every kept run is a whole 5-fold run over the same images, pairable with the
    others, and its pooled accuracy is what docs/cv/README.md says."""
    folder = Path(__file__).resolve().parents[2] / "docs" / "cv"
    readme = (folder / "README.md").read_text()
    runs = {f.name: load_run(f) for f in sorted(folder.glob("*.json.gz"))}
    assert runs, "no kept runs"
    first = next(iter(runs.values()))
    for name, run in runs.items():
        assert run.folds == [0, 1, 2, 3, 4] and len(run.predicted) == len(first.predicted), name
        right = sum(run.predicted[s] == run.labels[s] for s in run.predicted)
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}`"))
        assert f"| {100 * right / len(run.predicted):.1f} (" in row, name
        compare([(first, run)])  # same images, same folds
