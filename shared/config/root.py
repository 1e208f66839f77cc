"""The whole configuration as one model; ``pipeline.load`` fills it from its sources."""

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import Field, ValidationError, field_validator

from ..errors import ConfigError
from .base import StrictModel
from .categories import Category, check_categories, coerce_categories, default_categories
from .clean import CleanConfig
from .edge import EdgeConfig, key_map_problems
from .mqtt import MqttConfig
from .rollout import RolloutConfig
from .sources import find_secrets, secrets_refused
from .store import StoreConfig
from .training import SearchConfig, TrainConfig

logger = logging.getLogger(__name__)


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
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)

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
    """Validate an in-memory tree (no file, environment or flags: see ``load``)."""
    secrets = find_secrets(data)
    if secrets:
        raise ConfigError(secrets_refused(source, secrets))
    try:
        return RecyclopsConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from None
