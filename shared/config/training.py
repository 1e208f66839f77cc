"""Training, search and publishing settings for the cloud jobs.

Every field is also a ``recyclops train`` flag (see ``recyclops.cloud.cli.train``); a file
``[train]`` section, flags and RECYCLOPS_TRAIN__KEY overrides all land here.
"""

from typing import Literal

from pydantic import Field, model_validator

from ..primitives import SafeName
from .base import StrictModel


class TrainConfig(StrictModel):
    epochs: int = Field(12, ge=1, le=1000, title="Epochs (head stage)")
    batch_size: int = Field(32, ge=1, le=1024, title="Batch size")
    dropout: float = Field(0.2, ge=0.0, lt=1.0, title="Dropout before the classifier")
    optimizer: Literal["adam", "rmsprop", "sgd"] = Field("adam", title="Optimizer")
    learning_rate: float = Field(
        3e-3,
        gt=0,
        le=1.0,
        title="Learning rate (head stage)",
        description="Fine-tuning uses this ÷ 10 unless fine_tune_learning_rate is set.",
    )
    lr_schedule: Literal["constant", "cosine"] = Field("cosine", title="Learning-rate schedule")
    label_smoothing: float = Field(0.1, ge=0.0, lt=1.0, title="Label smoothing")
    validation_split: float = Field(0.15, gt=0.0, lt=0.5, title="Validation fraction")
    test_split: float = Field(0.15, gt=0.0, lt=0.5, title="Test fraction")
    image_size: int = Field(
        224,
        ge=32,
        le=1024,
        title="Input height",
        description="Also the width unless image_width is set.",
    )
    image_width: int | None = Field(
        None,
        ge=32,
        le=1024,
        title="Input width",
        description="Unset: square (image_size). 320 with image_size 240 keeps a 4:3 camera "
        "frame's aspect, and 640x480 frames reduce by an exact factor of 2.",
    )
    resize: Literal["bilinear", "area_linear", "area_antialiased"] | None = Field(
        None,
        title="Resize of new models",
        description="Unset: the project's current default (recyclops.shared.preprocess."
        "NEW_MODEL_RESIZE). Recorded in the manifest; the edge resizes exactly so.",
    )
    weights: str = Field(
        "imagenet", title="Base weights", description="'imagenet', 'none' or a .h5/.weights.h5 path"
    )
    alpha: float = Field(1.0, gt=0.0, le=1.4, title="MobileNetV2 width multiplier")
    fine_tune: bool = Field(True, title="Fine-tune the top of the base after the head")
    fine_tune_layers: int = Field(
        118,
        ge=1,
        le=500,
        title="Top base layers to unfreeze",
        description="Rounded up to a clean cut (118 = block 4 and up, 91 = block 7 and up, "
        "38 = block 13 and up); BatchNorm stays frozen. 91 beat 38 by 2.2 points "
        "cross-validated; 118 with refit and qat_epochs blessed (docs/training.md).",
    )
    fine_tune_epochs: int = Field(16, ge=0, le=1000, title="Fine-tuning epochs")
    fine_tune_learning_rate: float | None = Field(None, gt=0, le=1.0, title="Fine-tune LR")
    pipeline: Literal["cached", "pixels"] = Field(
        "cached",
        title="Training pipeline",
        description="cached: frozen layers run once per fixed augmented view; pixels: tf.data "
        "with live augmentation through the whole model.",
    )
    augment: bool = Field(True, title="Augment training images")
    augment_views: int = Field(8, ge=1, le=32, title="Fixed augmented views per image (cached)")
    flip: bool = Field(True, title="Random horizontal flip")
    vertical_flip: bool = Field(
        False,
        title="Random vertical flip",
        description="Items land in a bin any way up, so upside down is a view a camera sees.",
    )
    rotation: float = Field(0.08, ge=0.0, le=0.5, title="Random rotation (fraction of a turn)")
    zoom: float = Field(0.15, ge=0.0, le=0.9, title="Random zoom")
    color: float = Field(
        0.0,
        ge=0.0,
        le=0.9,
        title="Random brightness and contrast (0: off)",
        description="Each training image's brightness shifted by up to this fraction of the "
        "range and its contrast scaled by up to 1 ± this: lighting differs between bins.",
    )
    mixup: float = Field(
        0.0,
        ge=0.0,
        le=10.0,
        title="Mixup alpha (0: off)",
        description="Each training example blended with another of its batch, and its label "
        "with it, by a Beta(alpha, alpha) weight. Both pipelines, both stages.",
    )
    ema: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        title="Weight average: EMA momentum per step (0: off)",
        description="An exponential moving average of the trainable weights (e.g. 0.99); "
        "the average is what validation scores, the best epoch keeps and the model ships.",
    )
    class_weights: bool = Field(True, title="Weight classes by inverse frequency")
    early_stopping_patience: int = Field(4, ge=1, le=1000, title="Early stopping patience")
    refit: bool = Field(
        True,
        title="Refit on training + validation images",
        description="After validation chose each stage's epochs, train a fresh model on "
        "training and validation images for exactly those epochs (the test split stays out).",
    )
    qat_epochs: int = Field(
        3,
        ge=0,
        le=100,
        title="Quantisation-aware fine-tuning epochs (0: off)",
        description="After training (and the refit), this many epochs on the pixels with the "
        "int8 model's rounding simulated (folded, per-channel weights; calibrated activation "
        "ranges), so the int8 conversion keeps the float model's answers.",
    )
    qat_learning_rate: float = Field(
        1e-5, gt=0.0, le=1.0, title="Quantisation-aware fine-tuning learning rate (constant)"
    )

    @property
    def input_hw(self) -> tuple[int, int]:
        """The model's input (height, width)."""
        return self.image_size, self.image_width or self.image_size

    representative_images: int = Field(300, ge=4, le=10000, title="int8 calibration images")
    # ---- blessing: may this model replace the one serving? (docs/training.md, "Blessing")
    min_accuracy: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        title="Floor: least int8 test accuracy",
        description="Unset: halfway between the majority-class rate of the test split and 1 "
        "(0.62 for TrashNet's six classes), so chance-level models never pass.",
    )
    min_class_accuracy: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        title="Floor for a judged class",
        description="A judged class fails when even its 95% upper bound is below this. Unset: "
        "halfway between 1/categories and 1.",
    )
    min_class_support: int = Field(
        10, ge=1, le=100_000, title="Test images a class needs to be judged on its own"
    )
    significance: float = Field(
        0.05, gt=0.0, lt=0.5, title="Significance level of the paired tests (one-sided)"
    )
    max_drop: float = Field(
        5.0,
        ge=0.0,
        le=100.0,
        title="Largest drop (points) against the champion, even when not significant",
    )
    int8_max_drop: float = Field(
        1.5, ge=0.0, le=100.0, title="Largest int8 drop (points) below float, overall"
    )
    require: Literal["not_worse", "better"] = Field(
        "not_worse",
        title="What the challenger must show against the champion",
        description="not_worse: not worse beyond noise; better: better beyond noise.",
    )
    golden_images: int = Field(24, ge=8, le=64, title="Golden images shipped with the model")
    golden_tolerance: float = Field(
        0.05, gt=0.0, le=1.0, title="Golden check: largest probability difference on a device"
    )
    seed: int = Field(1337, title="Seed")
    channel: SafeName = Field("stable", title="Channel to publish to")

    @property
    def fine_tune_lr(self) -> float:
        return self.fine_tune_learning_rate or self.learning_rate / 10


class SearchConfig(StrictModel):
    """The grid; the default is the original project's."""

    batch_size: list[int] = Field([4, 8, 16, 32], min_length=1, title="Batch sizes")
    dropout: list[float] = Field([0.0, 0.1, 0.2, 0.3, 0.4, 0.5], min_length=1, title="Dropouts")
    optimizer: list[Literal["adam", "rmsprop", "sgd"]] = Field(["adam", "rmsprop"], min_length=1)
    learning_rate: list[float] = Field([1e-4, 1e-5], min_length=1, title="Learning rates")
    fine_tune: list[bool] = Field([False, True], min_length=1, title="Fine-tuning off/on")
    epochs: int = Field(10, ge=1, le=1000, title="Epochs per trial (head)")
    fine_tune_epochs: int = Field(5, ge=0, le=1000, title="Fine-tune epochs per trial")

    @model_validator(mode="after")
    def _bounds(self) -> "SearchConfig":
        if any(not 1 <= b <= 1024 for b in self.batch_size):
            raise ValueError("batch sizes must be 1..1024")
        if any(not 0.0 <= d < 1.0 for d in self.dropout):
            raise ValueError("dropouts must be in [0, 1)")
        if any(not 0.0 < lr <= 1.0 for lr in self.learning_rate):
            raise ValueError("learning rates must be in (0, 1]")
        return self

    @property
    def size(self) -> int:
        return (
            len(self.batch_size)
            * len(self.dropout)
            * len(self.optimizer)
            * len(self.learning_rate)
            * len(self.fine_tune)
        )
