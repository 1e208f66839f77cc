"""Configuration models and the one pipeline that fills them (``load``)."""

from .base import StrictModel
from .categories import Category
from .clean import CleanConfig
from .edge import EdgeConfig
from .flags import Flag, add_model_flags, from_args, model_flags
from .mqtt import MqttConfig
from .pipeline import Resolved, apply_flags, load, read_secrets, resolve
from .rollout import RolloutConfig
from .root import RecyclopsConfig, validate_config
from .sources import Overrides
from .store import StoreConfig
from .training import SearchConfig, TrainConfig

__all__ = [
    "Category",
    "CleanConfig",
    "EdgeConfig",
    "Flag",
    "MqttConfig",
    "Overrides",
    "RecyclopsConfig",
    "Resolved",
    "RolloutConfig",
    "SearchConfig",
    "StoreConfig",
    "StrictModel",
    "TrainConfig",
    "add_model_flags",
    "apply_flags",
    "from_args",
    "load",
    "model_flags",
    "read_secrets",
    "resolve",
    "validate_config",
]
