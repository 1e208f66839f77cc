"""Which test images a model travels with as its golden set."""

import numpy as np

from recyclops.cloud.golden_set import MIN_MARGIN, build, choose


def test_golden_images_spread_over_classes_with_clear_margins_first():
    y = np.array([0, 0, 0, 1, 1, 2])
    probs = np.array(
        [
            [0.50, 0.45, 0.05],  # class 0, margin 0.05: kept for last
            [0.90, 0.05, 0.05],
            [0.80, 0.10, 0.10],
            [0.10, 0.85, 0.05],
            [np.nan, 0.5, 0.5],  # non-finite: never golden
            [0.10, 0.10, 0.80],
        ]
    )
    assert choose(y, probs, 3) == [1, 3, 5]  # one per class, clear margins
    assert choose(y, probs, 10) == [0, 1, 2, 3, 5]
    assert MIN_MARGIN > 0.05


def test_a_model_finite_on_no_test_image_gets_no_golden_set():
    y = np.array([0, 1])
    probs = np.full((2, 2), np.nan)
    assert choose(y, probs, 8) == []
    assert build(None, ["a", "b"], y, probs, None, None, 8) is None  # type: ignore[arg-type]
