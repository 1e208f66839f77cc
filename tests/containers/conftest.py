"""Session fixtures for the container test: one private engine, each image built once."""

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .engine import ROOT, Engine, missing_requirements, private_engine

WEIGHTS = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="session")
def engine(artifacts_dir: Path) -> Iterator[Engine]:
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    logs = artifacts_dir / "containers"
    logs.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with private_engine(logs) as eng:
        eng.base_image()
        TIMINGS["engine and base image"] = time.monotonic() - start
        yield eng
    (logs / "timings.json").write_text(json.dumps(TIMINGS, indent=2))


@pytest.fixture(scope="session")
def clean_image(engine: Engine) -> str:
    TIMINGS["build clean"] = engine.build("clean.Dockerfile", "recyclops-clean:test")
    return "recyclops-clean:test"


@pytest.fixture(scope="session")
def cloud_image(engine: Engine) -> str:
    """The CPU job image, with the ImageNet weights when ../shared has them (offline)."""
    shared = ROOT.parent / "shared" / "weights" / WEIGHTS
    target = ROOT / "docker" / "weights" / WEIGHTS
    if shared.is_file() and not target.is_file():
        shutil.copyfile(shared, target)  # docker/weights/*.h5 is ignored by git
    weights = "imagenet" if target.is_file() else "none"
    TIMINGS["build cloud (cpu)"] = engine.build(
        "cloud.Dockerfile", "recyclops-cloud:test", TF_VARIANT="cpu", WEIGHTS=weights
    )
    return "recyclops-cloud:test"


@pytest.fixture(scope="session")
def edge_image(engine: Engine) -> str:
    TIMINGS["build edge"] = engine.build("edge.Dockerfile", "recyclops-edge:test")
    return "recyclops-edge:test"
