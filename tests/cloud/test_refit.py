"""``refit``: after validation chose each stage's epochs, the shipped model is a fresh one
trained on training + validation images for exactly those epochs (the test split stays out)."""

import json
import tomllib
from pathlib import Path

import pytest
from support.synthetic import shapes

from recyclops.cloud.dataset import dataset_from_folders
from recyclops.cloud.fit import refit_config
from recyclops.cloud.train import prepare_arrays, train
from recyclops.shared.config import TrainConfig

from .helpers import TINY_TOML

CATS = ["red", "green", "blue"]


def _history(head: int, tune: int | None) -> dict:
    stages = [{"stage": "head", "best_epochs": head}]
    if tune is not None:
        stages.append({"stage": "fine_tune", "best_epochs": tune})
    return {"stages": stages}


def test_refit_config_keeps_the_chosen_epochs() -> None:
    config = TrainConfig(epochs=12, fine_tune_epochs=16)
    cfg = refit_config(config, _history(5, 9))
    assert (cfg.epochs, cfg.fine_tune_epochs, cfg.fine_tune) == (5, 9, True)
    # fine-tuning never beat the head alone: the refit leaves it out
    cfg = refit_config(config, _history(5, 0))
    assert (cfg.epochs, cfg.fine_tune) == (5, False)
    # the head's best was its first epoch's start: at least one epoch is trained
    assert refit_config(config, _history(0, None)).epochs == 1
    assert (
        refit_config(config.model_copy(update={"fine_tune": False}), _history(3, 4)).fine_tune
        is False
    )


@pytest.mark.slow
def test_train_with_refit_ships_a_model_trained_on_training_and_validation(
    tmp_path: Path,
) -> None:
    root = tmp_path / "data"
    for cat, images in shapes(CATS, per_class=20, seed=4, size=64).items():
        (root / cat).mkdir(parents=True)
        for i, data in enumerate(images):
            (root / cat / f"{i}.jpg").write_bytes(data)
    ds = dataset_from_folders(root, CATS, cache_dir=tmp_path / "cache")
    tiny = tomllib.loads(TINY_TOML.read_text())["train"]
    config = TrainConfig(
        **{**tiny, "refit": True, "epochs": 4, "fine_tune_epochs": 3, "qat_epochs": 1}
    )
    result = train(config, ds, tmp_path / "runs", run_id="refit")

    metrics = json.loads((tmp_path / "runs" / "refit" / "metrics.json").read_text())
    history = metrics["history"]
    chosen = {s["stage"]: s["best_epochs"] for s in history["stages"]}
    refit = history["refit"]
    prep = prepare_arrays(config, ds)
    assert refit["images"] == len(prep.data.y_train) + len(prep.data.y_val)
    assert refit["head_epochs"] == max(1, chosen["head"])
    assert refit["fine_tune_epochs"] == chosen.get("fine_tune", 0)
    # the refit trains exactly those epochs: no early stopping, no best-epoch restore
    trained = {s["stage"]: s["epochs"] for s in refit["stages"]}
    assert trained["head"] == refit["head_epochs"]
    assert trained.get("fine_tune", 0) == refit["fine_tune_epochs"]
    # then the refit model's quantisation-aware epoch, on the same images
    assert history["qat"]["epochs"] == 1 and history["qat"]["images"] == refit["images"]
    # and it is the model that was converted, scored on the untouched test split and judged
    assert result.model_path.is_file()
    assert sum(metrics["int8"]["support"].values()) == len(prep.y_test)
