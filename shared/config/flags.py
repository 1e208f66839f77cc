"""Command-line flags as the pipeline's top layer: each app says which parsed flag sets
which key, and :func:`from_args` turns the parsed flags into :class:`Overrides`."""

import argparse
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from .sources import Overrides

_GIVEN: Any = object()


@dataclass(frozen=True)
class Flag:
    """``--fps`` (argparse ``dest`` fps) sets ``edge.camera.fps``. With ``const``, a given
    (truthy) flag sets that value instead: ``--no-live-view`` sets enabled = false."""

    dest: str
    key: str
    flag: str
    const: Any = _GIVEN


def from_args(args: argparse.Namespace, flags: Iterable[Flag]) -> Overrides:
    """The overrides of the flags given (None: not given; a store_true flag: only when set)."""
    tree: dict[str, Any] = {}
    origin: dict[tuple[str, ...], str] = {}
    for f in flags:
        value = getattr(args, f.dest, None)
        if f.const is not _GIVEN:
            if not value:
                continue
            value = f.const
        elif value is None:
            continue
        path = tuple(f.key.split("."))
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
        origin[path] = f.flag
    return Overrides(tree, origin)


def _base_type(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _base_type(inner[0])
    if origin is typing.Literal:
        return str
    return annotation


def model_flags(model: type[BaseModel], section: str, prefix: str) -> tuple[Flag, ...]:
    """One flag per field of a section's model: ``--fine-tune-layers`` (dest
    ``<prefix>fine_tune_layers``) sets ``<section>.fine_tune_layers``."""
    return tuple(
        Flag(f"{prefix}{name}", f"{section}.{name}", "--" + name.replace("_", "-"))
        for name in model.model_fields
    )


def add_model_flags(
    group: Any, model: type[BaseModel], prefix: str, skip: frozenset[str] = frozenset()
) -> None:
    """Add :func:`model_flags`' flags to an argparse parser or group: unset flags are None,
    so the lower layers (file, environment) keep their values."""
    for name, field in model.model_fields.items():
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
                dest=f"{prefix}{name}",
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        else:
            group.add_argument(
                flag,
                dest=f"{prefix}{name}",
                type=kind,
                default=None,
                metavar=name.upper(),
                choices=choices,
                help=help_text,
            )
