"""Early stopping judges fine-tuning only from half way through its schedule: unfreezing
knocks validation accuracy down first and it recovers as the rate decays, so a stage
judged at its first epochs can stop below the head and never recover (docs/training.md).
The head stage is judged from its first epoch as before."""

from recyclops.cloud.fit import fine_tune_watch_from
from recyclops.shared.config import TrainConfig

from .tiny_fit import fit_tiny_cached


def test_fine_tuning_is_judged_from_half_way() -> None:
    # a rate too small to move a weight and BatchNorm statistics held (on the random base
    # they would move with every batch): validation accuracy is flat in both stages, so
    # early stopping fires as soon as it may
    history = fit_tiny_cached(
        bn_frozen=True,
        epochs=6,
        fine_tune_epochs=6,
        learning_rate=1e-12,
        fine_tune_learning_rate=1e-12,
        early_stopping_patience=1,
    )
    stages = {s["stage"]: s for s in history["stages"]}
    assert len(set(stages["fine_tune"]["val_accuracy"])) == 1  # flat, as intended
    # the head: its first epoch is the best, the second exhausts a patience of one
    assert stages["head"]["epochs"] == 2
    # fine-tuning: three epochs unjudged, the fourth the best, the fifth exhausts patience
    assert stages["fine_tune"]["epochs"] == 6 // 2 + 1 + 1
    # nothing beat the head: the head's weights stand
    assert stages["fine_tune"]["best_epochs"] == 0


def test_watch_from_counts_from_the_stage_start() -> None:
    assert fine_tune_watch_from(TrainConfig(fine_tune_epochs=16), done=12) == 20
    assert fine_tune_watch_from(TrainConfig(fine_tune_epochs=1), done=3) == 3
