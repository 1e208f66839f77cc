"""What the cloud subcommands share: config loading (file, environment, flags), the store,
TrainConfig flags."""

import argparse
from pathlib import Path

from ...shared.config import (
    Flag,
    RecyclopsConfig,
    SearchConfig,
    TrainConfig,
    add_model_flags,
    apply_flags,
    from_args,
    load,
    model_flags,
)
from ...shared.errors import ConfigError
from ...shared.store import ObjectStore, open_store

#: Fields whose flag the user rarely needs spelled differently.
_SKIP: frozenset[str] = frozenset()
STORE_FLAGS = (Flag("store", "store.url", "--store"),)
#: ``--epochs`` (dest train_epochs) sets train.epochs, one per TrainConfig field.
TRAIN_FLAGS = model_flags(TrainConfig, "train", "train_")
#: ``recyclops search``'s grid flags.
SEARCH_FLAGS = (
    Flag("batch_sizes", "search.batch_size", "--batch-sizes"),
    Flag("dropouts", "search.dropout", "--dropouts"),
    Flag("optimizers", "search.optimizer", "--optimizers"),
    Flag("learning_rates", "search.learning_rate", "--learning-rates"),
    Flag("fine_tunes", "search.fine_tune", "--fine-tunes"),
    Flag("trial_epochs", "search.epochs", "--trial-epochs"),
)


def load_config(args: argparse.Namespace) -> RecyclopsConfig:
    """The file, the environment, then every flag this command has (store, training)."""
    return load(getattr(args, "config", None), flags=from_args(args, STORE_FLAGS + TRAIN_FLAGS))


def add_store(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", metavar="URL", help="store URL (default: the config's store.url)"
    )


def store_from(args: argparse.Namespace, config: RecyclopsConfig) -> ObjectStore:
    return open_store(apply_flags(config, from_args(args, STORE_FLAGS)).store)


def add_train_flags(parser: argparse.ArgumentParser, skip: frozenset[str] = _SKIP) -> None:
    """One flag per TrainConfig field (``--fine-tune-layers``); unset flags keep the file's."""
    group = parser.add_argument_group("training (each overrides the config file's [train])")
    add_model_flags(group, TrainConfig, "train_", skip)


def train_config(args: argparse.Namespace, config: RecyclopsConfig) -> TrainConfig:
    """The config's [train] with every given flag applied (validated: bad values name the flag)."""
    return apply_flags(config, from_args(args, TRAIN_FLAGS)).train


def search_config(args: argparse.Namespace, config: RecyclopsConfig) -> SearchConfig:
    """The grid: ``--grid FILE``'s [search] (else the config's), then the grid flags."""
    if getattr(args, "grid", None):
        config = config.model_copy(update={"search": load(args.grid).search})
    return apply_flags(config, from_args(args, SEARCH_FLAGS)).search


def existing_dir(path: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise ConfigError(f"{path}: not a folder")
    return p
