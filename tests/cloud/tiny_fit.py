"""A cached-pipeline training run small enough for a unit test: 24 random 32 px images of
3 classes, a random base, both stages for 2 epochs (seconds on 2 cores)."""

from typing import Any

import numpy as np

from recyclops.cloud.fit import SplitArrays, fit_cached
from recyclops.cloud.model import build_parts
from recyclops.shared.config import TrainConfig


def fit_tiny_cached(bn_frozen: bool = False, **changes: Any) -> dict[str, Any]:
    """``fit_cached``'s history for the tiny run, with ``changes`` to its recipe.
    ``bn_frozen``: the BatchNorm statistics stay put while fine-tuning, as with ImageNet
    weights (the random base otherwise keeps updating them, whatever the learning rate)."""
    rng = np.random.default_rng(1)
    data = SplitArrays(
        rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8),
        np.arange(24) % 3,
        rng.integers(0, 256, (9, 32, 32, 3), dtype=np.uint8),
        np.arange(9) % 3,
        3,
    )
    recipe: dict[str, Any] = {
        "image_size": 32,
        "weights": "none",
        "epochs": 2,
        "fine_tune_epochs": 2,
        "fine_tune_layers": 20,
        "augment_views": 2,
        "batch_size": 8,
    }
    config = TrainConfig(**{**recipe, **changes})
    parts = build_parts(config, 3)
    parts.bn_frozen = parts.bn_frozen or bn_frozen
    return fit_cached(parts, config, data)
