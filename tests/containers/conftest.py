"""Session fixtures for the container test: one private engine, each image built once."""

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .engine import Engine, missing_requirements, private_engine

TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="session")
def engine(artifacts_dir: Path) -> Iterator[Engine]:
    """Skipped under a plain ``make test``; under ``make container-test`` a missing
    requirement is a failure, so the target never passes having tested nothing."""
    reason = missing_requirements()
    if reason and os.environ.get("RECYCLOPS_CONTAINER_TEST") == "1":
        pytest.fail(f"container test cannot run: {reason}", pytrace=False)
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
    """The CPU job image. The ImageNet weights come with the package (no network, no
    ../shared): the build checks them by content."""
    TIMINGS["build cloud (cpu)"] = engine.build(
        "cloud.Dockerfile", "recyclops-cloud:test", TF_VARIANT="cpu", WEIGHTS="imagenet"
    )
    return "recyclops-cloud:test"


@pytest.fixture(scope="session")
def edge_image(engine: Engine) -> str:
    TIMINGS["build edge"] = engine.build("edge.Dockerfile", "recyclops-edge:test")
    return "recyclops-edge:test"
