"""Training augmentation: each knob does what it says and nothing else, and the defaults keep
the stack every cross-validated run so far was trained with."""

import numpy as np
import pytest

from recyclops.cloud.augment import augmenter, fixed_view
from recyclops.shared.config import TrainConfig

pytest.importorskip("keras")


def _batch(n: int = 32, size: int = 16) -> np.ndarray:
    """Images whose four corners all differ, so each flip gives a distinct image."""
    rows = np.arange(size, dtype=np.float32)[:, None] * 7
    cols = np.arange(size, dtype=np.float32)[None, :] * 3
    grid = np.zeros((size, size), np.float32)
    one = np.stack([grid + rows + cols, grid + rows * 2 % 200, grid + cols * 5 % 250], axis=-1)
    return np.repeat(one[None], n, axis=0)


def _run(config: TrainConfig, x: np.ndarray) -> np.ndarray:
    aug = augmenter(config)
    assert aug is not None
    return np.asarray(aug(x, training=True))


def _kinds(x: np.ndarray, out: np.ndarray) -> set[str]:
    """Which of the four flips each output image is (it must be one)."""
    forms = {
        "same": x[0],
        "horizontal": x[0][:, ::-1],
        "vertical": x[0][::-1, :],
        "both": x[0][::-1, ::-1],
    }
    found = set()
    for img in out:
        names = [k for k, v in forms.items() if np.allclose(img, v, atol=1e-3)]
        assert len(names) == 1, "an output is not a flip of the input"
        found.add(names[0])
    return found


def _flips_only(**changes: object) -> TrainConfig:
    return TrainConfig(rotation=0.0, zoom=0.0, **changes)  # type: ignore[arg-type]


def test_the_default_flips_left_right_only() -> None:
    x = _batch()
    assert _kinds(x, _run(_flips_only(), x)) == {"same", "horizontal"}
    names = [type(layer).__name__ for layer in augmenter(TrainConfig()).layers]
    assert names == ["RandomFlip", "RandomRotation", "RandomZoom"]


def test_vertical_flip_alone_and_with_the_horizontal() -> None:
    x = _batch()
    assert _kinds(x, _run(_flips_only(flip=False, vertical_flip=True), x)) == {"same", "vertical"}
    assert _kinds(x, _run(_flips_only(vertical_flip=True), x)) == {
        "same",
        "horizontal",
        "vertical",
        "both",
    }
    assert augmenter(_flips_only(flip=False)) is None


def test_color_changes_brightness_and_contrast_within_range_but_not_the_layout() -> None:
    x = _batch(64)
    out = _run(_flips_only(flip=False, color=0.3), x)
    assert out.min() >= 0.0 and out.max() <= 255.0
    means = out.reshape(len(out), -1).mean(axis=1)
    spreads = out.reshape(len(out), -1).std(axis=1)
    assert means.std() > 5.0 and spreads.std() > 2.0  # each image its own shift and scale
    for img in out:  # no pixel moves: every channel stays correlated with the input
        for c in range(3):  # (clipping at 0 and 255 costs some of the correlation)
            assert np.corrcoef(img[..., c].ravel(), x[0][..., c].ravel())[0, 1] > 0.8


def test_fixed_views_with_color_are_uint8_and_view_zero_is_the_image() -> None:
    x = _batch(8).astype(np.uint8)
    config = _flips_only(color=0.3, vertical_flip=True)
    assert fixed_view(x, config, 0) is x
    one = fixed_view(x, config, 1)
    assert one.dtype == np.uint8 and one.shape == x.shape and not np.array_equal(one, x)
    assert np.array_equal(one, fixed_view(x, config, 1))  # a view is fixed: seeded
