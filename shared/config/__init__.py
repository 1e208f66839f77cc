"""Configuration models and the one ``load()``."""

from .base import StrictModel
from .categories import Category
from .clean import CleanConfig
from .edge import EdgeConfig
from .mqtt import MqttConfig
from .root import RecyclopsConfig, env_overrides, load, validate_config
from .store import StoreConfig
from .training import SearchConfig, TrainConfig

__all__ = [
    "Category",
    "CleanConfig",
    "EdgeConfig",
    "MqttConfig",
    "RecyclopsConfig",
    "SearchConfig",
    "StoreConfig",
    "StrictModel",
    "TrainConfig",
    "env_overrides",
    "load",
    "validate_config",
]
