"""The blessing's rules on constructed outcomes: floor, champion, int8 against float, classes."""

import numpy as np
import pytest

from recyclops.cloud.blessing import Champion, bless
from recyclops.cloud.stats import binom_tail, paired, wilson
from recyclops.shared.config import TrainConfig


def probs_for(y: np.ndarray, right: np.ndarray, k: int) -> np.ndarray:
    """One-hot outputs: the true class where ``right``, the next class otherwise."""
    pred = np.where(right, y, (y + 1) % k)
    out = np.full((len(y), k), 0.01)
    out[np.arange(len(y)), pred] = 1.0
    return out / out.sum(axis=1, keepdims=True)


def labels(per_class: list[int]) -> np.ndarray:
    return np.concatenate([np.full(n, i) for i, n in enumerate(per_class)])


def verdict(y, q_right, f_right=None, champion=None, **config):
    k = int(y.max()) + 1
    cats = [f"c{i}" for i in range(k)]
    f_right = q_right if f_right is None else f_right
    return bless(
        TrainConfig(**config),
        cats,
        y,
        probs_for(y, q_right, k),
        probs_for(y, f_right, k),
        champion,
        version="challenger",
        model_sha256="0" * 64,
    )


def champion(y, right, index=None):
    k = int(y.max()) + 1
    index = np.arange(len(y)) if index is None else index
    return Champion("champ", [f"c{i}" for i in range(k)], index, probs_for(y[index], right, k))


def test_statistics_are_exact():
    assert binom_tail(0, 5) == 1.0 and binom_tail(6, 5) == 0.0
    assert binom_tail(5, 5) == pytest.approx(1 / 32)
    assert binom_tail(8, 10) == pytest.approx((45 + 10 + 1) / 1024)
    lo, hi = wilson(90, 100)
    assert 0.82 < lo < 0.83 and 0.94 < hi < 0.95
    p = paired([True, True, False, False], [True, False, True, True])
    assert (p.only_new, p.only_ref, p.discordant) == (1, 2, 3)
    assert p.delta_points == pytest.approx(-25.0)


@pytest.mark.parametrize("k", [2, 6, 20])
def test_a_chance_level_model_is_refused_by_the_floor_for_any_number_of_classes(k):
    rng = np.random.default_rng(k)
    y = labels([30] * k)
    right = rng.random(len(y)) < 1 / k  # right about as often as guessing
    v = verdict(y, right)
    assert not v.blessed
    assert any(r.startswith("floor:") for r in v.reasons)
    assert "first model of this channel" in v.summary


def test_a_near_chance_model_is_refused_and_a_good_one_blessed():
    y = labels([40] * 6)
    near = np.arange(len(y)) % 10 < 4  # 40% on six classes: well above chance, still useless
    assert not verdict(y, near).blessed
    good = np.arange(len(y)) % 10 < 9
    v = verdict(y, good)
    assert v.blessed, v.summary
    assert v.record["int8"]["accuracy"] == pytest.approx(0.9)
    lo, hi = v.record["int8"]["interval"]
    assert lo < 0.9 < hi


def test_worse_than_the_champion_beyond_noise_is_refused():
    y = labels([50] * 6)
    champ_right = np.ones(len(y), bool)
    champ_right[:15] = False  # champion 95%
    new_right = np.ones(len(y), bool)
    new_right[:15] = False
    new_right[100:115] = False  # 15 more images lost, none gained: 90%
    v = verdict(y, new_right, champion=champion(y, champ_right))
    assert not v.blessed
    assert any("worse beyond noise" in r and "champ" in r for r in v.reasons), v.reasons
    ch = v.record["champion"]["overall"]
    assert (ch["only_new_right"], ch["only_reference_right"]) == (0, 15)
    assert ch["p_worse"] < 0.001


def test_within_noise_of_the_champion_is_blessed():
    y = labels([50] * 6)
    champ_right = np.ones(len(y), bool)
    champ_right[:20] = False
    new_right = np.ones(len(y), bool)
    new_right[3:20] = False
    new_right[200:206] = False  # 3 gained, 6 lost: a point worse, within noise
    v = verdict(y, new_right, champion=champion(y, champ_right))
    assert v.blessed, v.summary
    assert v.record["champion"]["overall"]["p_worse"] > 0.05
    better = verdict(y, new_right, champion=champion(y, champ_right), require="better")
    assert not better.blessed
    assert any("not better beyond noise" in r for r in better.reasons)


def test_a_bounded_drop_refuses_even_when_a_small_set_cannot_prove_it():
    y = labels([10] * 4)
    champ_right = np.ones(len(y), bool)
    new_right = champ_right.copy()
    new_right[[0, 10, 20]] = False  # 3 of 40 lost: 7.5 points, p = 0.125
    v = verdict(y, new_right, champion=champion(y, champ_right))
    assert not v.blessed
    assert any("points worse (limit 5)" in r for r in v.reasons), v.reasons


def test_a_one_image_swing_in_a_ten_image_class_does_not_fail_the_run():
    y = labels([60, 60, 60, 60, 60, 10])
    f_right = np.ones(len(y), bool)
    f_right[::12] = False
    q_right = f_right.copy()
    q_right[-1] = False  # the trash class: one of its 10 images flips under int8
    v = verdict(y, q_right, f_right)
    assert v.blessed, v.summary
    cls = v.record["int8_vs_float"]["classes"]["c5"]
    assert cls["only_reference_right"] == 1 and cls["p_worse"] == 0.5
    champ = verdict(y, q_right, f_right, champion=champion(y, f_right))
    assert champ.blessed, champ.summary


def test_small_classes_are_reported_not_judged():
    y = labels([60, 60, 5])
    right = np.ones(len(y), bool)
    right[-5:] = False  # the small class is always wrong
    v = verdict(y, right)
    assert v.blessed, v.summary
    assert v.record["classes"]["c2"] == {
        "images": 5,
        "int8_accuracy": 0.0,
        "float_accuracy": 0.0,
        "judged": False,
    }
    assert "not judged alone" in v.summary and "c2" in v.summary


def test_a_judged_class_far_below_its_floor_is_refused():
    y = labels([80, 80, 30])
    right = np.ones(len(y), bool)
    right[-30:-5] = False  # class c2 right on 5 of 30
    v = verdict(y, right)
    assert not v.blessed
    assert any("class c2" in r and "upper bound" in r for r in v.reasons)


def test_int8_worse_than_float_beyond_noise_is_refused():
    y = labels([50] * 4)
    f_right = np.ones(len(y), bool)
    q_right = f_right.copy()
    q_right[::20] = False  # 10 of 200 lost under int8, none gained
    v = verdict(y, q_right, f_right)
    assert not v.blessed
    assert any(r.startswith("int8 against float") for r in v.reasons)


def test_only_images_both_models_never_trained_on_are_compared():
    y = labels([50] * 4)
    right = np.ones(len(y), bool)
    index = np.arange(0, len(y), 2)
    v = verdict(y, right, champion=champion(y, right[index], index))
    assert v.record["champion"]["overall"]["images"] == len(index)
    few = verdict(y, right, champion=champion(y, right[:3], np.arange(3)))
    assert not few.blessed
    assert any("too few to compare" in r for r in few.reasons)


def test_changed_categories_fall_back_to_the_floor_and_say_so():
    y = labels([50] * 4)
    right = np.ones(len(y), bool)
    note = "the categories changed (champion: a, b; now: c0, c1, c2, c3)"
    v = verdict(y, right, champion=Champion("old", ["a", "b"], np.zeros(0, int), None, note))
    assert v.blessed
    assert v.record["champion"] == {"version": "old", "compared": False}
    assert "categories changed" in v.summary


def test_the_record_holds_everything_a_reader_needs(tmp_path):
    import json

    y = labels([30] * 3)
    right = np.arange(len(y)) % 10 < 9
    v = verdict(y, right, champion=champion(y, right))
    v.save(tmp_path)
    data = json.loads((tmp_path / "gate.json").read_text())
    for key in ("blessed", "reasons", "summary", "int8", "float", "int8_vs_float", "champion"):
        assert key in data
    assert data["model_sha256"] == "0" * 64
    assert (
        data["thresholds"]["significance"] == 0.05 and data["thresholds"]["require"] == "not_worse"
    )
    assert data["champion"]["version"] == "champ"
    assert set(data["champion"]["overall"]) >= {"p_worse", "p_better", "only_new_right"}


def test_a_manifests_split_record_tells_exactly_which_images_a_model_trained_on(tmp_path):
    """The property the champion comparison rests on: from a model's recorded split (salt,
    fractions, moved images) the split of every image in that run is recovered exactly, so
    the images compared were test images for both models, and data added later never moves
    an old image out of a model's test split."""
    import hashlib

    from recyclops.cloud.champion import split_for
    from recyclops.cloud.dataset import SPLIT_SALT, Dataset
    from recyclops.shared.manifest import SplitInfo

    shas = [hashlib.sha256(f"img{i}".encode()).hexdigest() for i in range(400)]
    # a 4-image class forces moves (every class with 3+ images gets one image in each split)
    labels = {s: ("small" if i < 4 else "big" if i % 2 else "other") for i, s in enumerate(shas)}
    ds = Dataset(tmp_path, ["big", "other", "small"], labels)
    splits, moved = ds.split_moves(0.15, 0.15)
    assert moved, "the small class should have needed a move"
    info = SplitInfo(salt=SPLIT_SALT, val_fraction=0.15, test_fraction=0.15, moved=moved)
    recorded = SplitInfo.model_validate_json(info.model_dump_json())  # as read from a manifest
    for name, members in splits.items():
        assert all(split_for(s, recorded) == name for s in members), name

    grown = {
        **labels,
        **{hashlib.sha256(f"new{i}".encode()).hexdigest(): "big" for i in range(300)},
    }
    later = Dataset(tmp_path, ["big", "other", "small"], grown).split(0.15, 0.15)
    shared_test = [s for s in later["test"] if split_for(s, recorded) == "test"]
    # every image both runs held out is compared; new images the champion never saw may be
    # too; none the champion trained or stopped early on ever is
    assert set(shared_test) >= set(later["test"]) & set(splits["test"])
    assert not set(shared_test) & (set(splits["train"]) | set(splits["val"]))
    other_fractions = SplitInfo(salt=SPLIT_SALT, val_fraction=0.1, test_fraction=0.3)
    widened = [s for s in later["test"] if split_for(s, other_fractions) == "test"]
    assert set(widened) >= set(shared_test) - set(moved)
