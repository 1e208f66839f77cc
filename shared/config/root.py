"""The whole configuration, loaded from one TOML file plus RECYCLOPS_… overrides."""

import json
import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from ..errors import ConfigError
from .base import StrictModel
from .categories import Category, check_categories, coerce_categories, default_categories
from .clean import CleanConfig
from .edge import EdgeConfig, key_map_problems
from .mqtt import MqttConfig
from .store import StoreConfig
from .training import SearchConfig, TrainConfig

logger = logging.getLogger(__name__)

ENV_PREFIX = "RECYCLOPS_"
#: Keys that look like secrets: refused in files so nobody commits one by accident.
SECRET_KEYS = frozenset(
    {"password", "secret", "token", "aws_secret_access_key", "aws_access_key_id", "secret_key"}
)


class RecyclopsConfig(StrictModel):
    store: StoreConfig = Field(default_factory=StoreConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    categories: list[Category] = Field(
        default_factory=default_categories, min_length=2, max_length=32, title="Categories"
    )
    edge: EdgeConfig = Field(default_factory=EdgeConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    clean: CleanConfig = Field(default_factory=CleanConfig)

    @field_validator("categories", mode="before")
    @classmethod
    def _coerce(cls, value: Any) -> Any:
        return coerce_categories(value)

    @field_validator("categories")
    @classmethod
    def _check(cls, value: list[Category]) -> list[Category]:
        return check_categories(value)

    @property
    def category_names(self) -> list[str]:
        return [c.name for c in self.categories]

    def key_map_problems(self) -> list[str]:
        """Categories (or undo) the configured keypad cannot press. Checked by ``config
        check`` and the edge daemon only: other jobs sharing the file need no keypad."""
        pairs = [(c.name, c.key) for c in self.categories]
        return key_map_problems(self.edge.keypad, pairs)


def _parse_env_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """``RECYCLOPS_STORE__URL=s3://b`` sets ``store.url``; ``__`` separates levels.

    Variables without ``__`` (RECYCLOPS_MQTT_PASSWORD, RECYCLOPS_CLEAN_TOKEN) are secrets or
    flags, not overrides.
    """
    tree: dict[str, Any] = {}
    for name, raw in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{name}: conflicts with another override")
        node[path[-1]] = _parse_env_value(raw)
    return tree


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _find_secrets(tree: Any, path: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            here = f"{path}.{key}" if path else str(key)
            if str(key).lower() in SECRET_KEYS:
                found.append(here)
            found += _find_secrets(value, here)
    return found


def format_validation_error(source: str, error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"]) or "(top level)"
        msg = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        got = item.get("input")
        shown = "" if item["type"] in ("extra_forbidden", "missing") else f" (got {got!r})"
        lines.append(f"{source}: {loc}: {msg}{shown}")
    return "\n".join(lines)


def validate_config(data: Mapping[str, Any], source: str = "<config>") -> RecyclopsConfig:
    secrets = _find_secrets(data)
    if secrets:
        raise ConfigError(
            f"{source}: {', '.join(secrets)}: secrets are never read from the config file; "
            "use the environment (RECYCLOPS_MQTT_PASSWORD, AWS_*), the AWS credential chain "
            "or $CREDENTIALS_DIRECTORY"
        )
    try:
        return RecyclopsConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from None


def load(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> RecyclopsConfig:
    """Load ``path`` (or only defaults when None), then apply environment overrides."""
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        source = str(path)
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{source}: no such file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source}: cannot read: {exc}") from None
    overrides = env_overrides(env)
    if overrides:
        source += " + RECYCLOPS_* environment"
        data = _merge(data, overrides)
    return validate_config(data, source)
