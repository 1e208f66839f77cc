"""Shared fixtures: a real SeaweedFS S3 server and a real mosquitto broker on 127.0.0.1."""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import devservers
from support.browser import playwright_api

from recyclops.shared.config import MqttConfig
from recyclops.shared.store import LocalStore, S3Store

os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
ARTIFACTS = Path(__file__).resolve().parent.parent / "build" / "test-artifacts"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Screenshots and reports a test run keeps (CI uploads build/test-artifacts)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devservers.S3Server]:
    """One SeaweedFS for the whole session; its credentials go into the environment."""
    with devservers.seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        saved = {k: os.environ.get(k) for k in server.env()}
        os.environ.update(server.env())
        try:
            yield server
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture
def s3_url(s3_server: devservers.S3Server) -> str:
    """A fresh prefix in the session's bucket, so tests never see each other's objects."""
    return f"s3://{s3_server.bucket}/t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def s3_store(s3_server: devservers.S3Server, s3_url: str) -> S3Store:
    bucket, _, prefix = s3_url[len("s3://") :].partition("/")
    return S3Store(bucket, prefix, endpoint_url=s3_server.endpoint_url, region="us-east-1")


@pytest.fixture
def local_store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.fixture(scope="session")
def mqtt_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devservers.MqttBroker]:
    """A broker for the session; tests that stop a broker use ``private_broker``."""
    with devservers.mosquitto(tmp_path_factory.mktemp("mosquitto")) as broker:
        yield broker


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[devservers.MqttBroker]:
    with devservers.mosquitto(tmp_path / "mosquitto") as broker:
        yield broker


@pytest.fixture
def mqtt_config(mqtt_broker: devservers.MqttBroker) -> MqttConfig:
    """A unique fleet per test keeps retained messages from leaking between tests."""
    return MqttConfig(
        host=mqtt_broker.host, port=mqtt_broker.port, fleet=f"t{uuid.uuid4().hex[:10]}"
    )


CHROMIUM = "/usr/bin/chromium"
#: Headless Chromium on a machine with no internet: without the background-networking
#: flags it keeps trying to reach Google's hosts.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser() -> Iterator[object]:
    """Debian's Chromium driven by Playwright (``playwright install`` cannot download here)."""
    sync_api = playwright_api()
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make system-deps` installs Debian's chromium")
    with sync_api.sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
