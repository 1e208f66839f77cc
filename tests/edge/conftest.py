"""Fixtures for the edge tests: a config on temporary folders, replay frames, the fixture model."""

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")

from edge_helpers import BLUE, GREEN, RED, write_frames

from recyclops.shared.config import RecyclopsConfig


@pytest.fixture
def frames_dir(tmp_path: Path) -> Path:
    """Red, green, blue frames (six of each, in runs) for the replay camera."""
    return write_frames(tmp_path / "frames", [RED] * 6 + [GREEN] * 6 + [BLUE] * 6)


@pytest.fixture
def make_config(tmp_path: Path, frames_dir: Path) -> Callable[..., RecyclopsConfig]:
    def make(**edge: Any) -> RecyclopsConfig:
        base: dict[str, Any] = {
            "model_dir": str(tmp_path / "models"),
            "spool_dir": str(tmp_path / "spool"),
            "state_dir": str(tmp_path / "state"),
            "camera": {"kind": "replay", "source": str(frames_dir), "fps": 30, "at_end": "loop"},
            "classifier": {"threads": 1, "window": 3},
            "spool": {"retry_min": 0.1, "retry_max": 0.5},
            "updates": {"poll_seconds": 0.3, "jitter_seconds": 0},
            "live_view": {"enabled": False, "port": 0},
            "status": {"file_seconds": 0.2, "stats_seconds": 0.5},
        }
        for key, value in edge.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                base[key] = {**base[key], **value}
            else:
                base[key] = value
        return RecyclopsConfig.model_validate(
            {"store": {"url": f"file://{tmp_path / 'store'}"}, "edge": base}
        )

    return make
