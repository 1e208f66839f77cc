"""Mixup: each training example blended with another of its batch by a Beta(α, α) weight,
its label and sample weight by the same weight; off at α = 0."""

import numpy as np
import pytest

from recyclops.cloud.augment import mixup
from recyclops.cloud.fit import _view_dataset

from .tiny_fit import fit_tiny_cached


def _batches(x: np.ndarray, y: np.ndarray, w: np.ndarray, batch: int):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y, w)).batch(batch)


def _data(n: int = 24) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4, 4, 3)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)]
    w = rng.uniform(0.5, 2.0, n).astype(np.float32)
    return x, y, w


def test_alpha_zero_leaves_the_batches_alone() -> None:
    ds = _batches(*_data(), 8)
    assert mixup(ds, 0.0, seed=1) is ds


@pytest.mark.parametrize("batch", [8, 7])
def test_every_example_is_one_blend_of_itself_and_its_partner(batch: int) -> None:
    x, y, w = _data()
    seen = []
    for start, (mx, my, mw) in zip(
        range(0, len(y), batch), mixup(_batches(x, y, w, batch), 0.4, seed=3), strict=True
    ):
        bx, by, bw = (a[start : start + batch] for a in (x, y, w))
        rx, ry, rw = bx[::-1], by[::-1], bw[::-1]
        mx, my, mw = np.asarray(mx), np.asarray(my), np.asarray(mw)
        for i in range(len(by)):
            d = (bx[i] - rx[i]).ravel()
            if not d.any():
                continue  # the middle of an odd batch pairs with itself
            # the one weight that explains the blended x explains its label and weight too
            lam = float(np.dot((mx[i] - rx[i]).ravel(), d) / np.dot(d, d))
            assert 0.0 <= lam <= 1.0
            np.testing.assert_allclose(mx[i], lam * bx[i] + (1 - lam) * rx[i], atol=1e-5)
            np.testing.assert_allclose(my[i], lam * by[i] + (1 - lam) * ry[i], atol=1e-5)
            np.testing.assert_allclose(mw[i], lam * bw[i] + (1 - lam) * rw[i], atol=1e-5)
            seen.append(lam)
        np.testing.assert_allclose(my.sum(axis=1), 1.0, atol=1e-5)
    lams = np.array(seen)
    # real blends, not copies: Beta(0.4, 0.4) puts most weight near, not at, 0 and 1
    assert ((lams > 0.05) & (lams < 0.95)).mean() > 0.2
    assert len(np.unique(np.round(lams, 4))) > len(lams) // 2  # a weight per example


def test_the_same_seed_blends_the_same_way() -> None:
    x, y, w = _data()
    a = [np.asarray(b[1]) for b in mixup(_batches(x, y, w, 8), 0.4, seed=5)]
    b = [np.asarray(b[1]) for b in mixup(_batches(x, y, w, 8), 0.4, seed=5)]
    c = [np.asarray(b[1]) for b in mixup(_batches(x, y, w, 8), 0.4, seed=6)]
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert not all(np.array_equal(p, q) for p, q in zip(a, c, strict=True))


def test_the_cached_pipeline_trains_on_blended_labels() -> None:
    """``mixup`` reaches the training batches of the cached pipeline, and a model still
    trains through both stages with it."""
    x, y, w = _data(32)
    feats = np.stack([x, x[:, ::-1]])  # two fixed views
    plain = next(iter(_view_dataset(feats, y, w, 16, seed=1)))[1].numpy()
    mixed = next(iter(_view_dataset(feats, y, w, 16, seed=1, mix=0.4)))[1].numpy()
    assert set(np.unique(plain)) <= {0.0, 1.0}
    assert ((mixed > 0.01) & (mixed < 0.99)).any()

    history = fit_tiny_cached(mixup=0.4)
    assert [s["stage"] for s in history["stages"]] == ["head", "fine_tune"]
    assert all(np.isfinite(s["loss"]).all() for s in history["stages"])
