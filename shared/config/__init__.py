"""Configuration models and the one ``load()``."""

from .base import SafeName, StrictModel, is_safe_segment
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
    "SafeName",
    "SearchConfig",
    "StoreConfig",
    "StrictModel",
    "TrainConfig",
    "env_overrides",
    "is_safe_segment",
    "load",
    "validate_config",
]
