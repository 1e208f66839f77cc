"""What the cloud subcommands share: config loading, the store, TrainConfig flags."""

import argparse
import types
import typing
from pathlib import Path
from typing import Any

from ...shared.config import RecyclopsConfig, TrainConfig, load
from ...shared.errors import ConfigError
from ...shared.store import ObjectStore, open_store

#: Fields whose flag the user rarely needs spelled differently.
_SKIP: frozenset[str] = frozenset()


def load_config(args: argparse.Namespace) -> RecyclopsConfig:
    return load(getattr(args, "config", None))


def add_store(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", metavar="URL", help="store URL (default: the config's store.url)"
    )


def store_from(args: argparse.Namespace, config: RecyclopsConfig) -> ObjectStore:
    if getattr(args, "store", None):
        return open_store(config.store.model_copy(update={"url": args.store}))
    return open_store(config.store)


def _base_type(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _base_type(inner[0])
    if origin is typing.Literal:
        return str
    return annotation


def add_train_flags(parser: argparse.ArgumentParser, skip: frozenset[str] = _SKIP) -> None:
    """One flag per TrainConfig field (``--fine-tune-layers``); unset flags keep the file's."""
    group = parser.add_argument_group("training (each overrides the config file's [train])")
    for name, field in TrainConfig.model_fields.items():
        if name in skip:
            continue
        flag = "--" + name.replace("_", "-")
        kind = _base_type(field.annotation)
        help_text = f"{field.title or name} (default {field.default!r})"
        choices = (
            typing.get_args(field.annotation)
            if typing.get_origin(field.annotation) is typing.Literal
            else None
        )
        if kind is bool:
            group.add_argument(
                flag,
                dest=f"train_{name}",
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        else:
            group.add_argument(
                flag,
                dest=f"train_{name}",
                type=kind,
                default=None,
                metavar=name.upper(),
                choices=choices,
                help=help_text,
            )


def train_config(args: argparse.Namespace, config: RecyclopsConfig) -> TrainConfig:
    """The file's [train] with every given flag applied (validated: bad values name the flag)."""
    updates = {
        k[len("train_") :]: v
        for k, v in vars(args).items()
        if k.startswith("train_") and v is not None
    }
    data = {**config.train.model_dump(), **updates}
    try:
        return TrainConfig.model_validate(data)
    except Exception as exc:
        raise ConfigError(f"training options: {exc}") from None


def existing_dir(path: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise ConfigError(f"{path}: not a folder")
    return p
