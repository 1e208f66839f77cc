"""compose.yaml run for real: the SeaweedFS service and the review tool, wired by compose.

The images are built by the test's engine (so this machine's proxy CA goes in as a build
secret) and tagged as compose.yaml names them; `docker compose up --no-build --wait` then
runs them with compose's own network, port publishing, health checks and .env settings.
The broker image (eclipse-mosquitto) comes from a registry, so it is checked separately
(test_broker_config.py). `make container-test` only.
"""

import secrets
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from support.devservers import free_port

from .engine import ROOT, Engine
from .test_compose import compose_binary

pytestmark = [pytest.mark.container, pytest.mark.slow]


@pytest.fixture
def stack(engine: Engine, clean_image: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    engine.build("s3.Dockerfile", "recyclops-s3")
    engine.run_cli("tag", clean_image, "recyclops-clean")
    settings = {
        "S3_ACCESS_KEY": "ct-" + secrets.token_hex(4),
        "S3_SECRET_KEY": secrets.token_urlsafe(24),
        "RECYCLOPS_CLEAN_TOKEN": secrets.token_urlsafe(24),
        "CLEAN_PORT": str(free_port()),
        "S3_PORT": str(free_port()),
    }
    env_file = tmp_path / "ct.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    project = "recyclops-ct-" + secrets.token_hex(3)
    base = [
        compose_binary(),
        "-f",
        str(ROOT / "compose.yaml"),
        "--env-file",
        str(env_file),
        "-p",
        project,
        "--profile",
        "local",
    ]

    def compose(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *args],
            env=engine.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )

    try:
        up = compose("up", "-d", "--no-build", "--wait", "--wait-timeout", "180", "s3", "clean")
        logs = compose("logs", "--no-color").stdout[-4000:]
        assert up.returncode == 0, up.stderr[-3000:] + logs
        yield settings
    finally:
        compose("down", "-v", "--timeout", "10")  # the containers, network and volumes it made


def test_compose_runs_the_store_and_the_review_tool(stack: dict[str, str]) -> None:
    clean = f"http://127.0.0.1:{stack['CLEAN_PORT']}"
    with urllib.request.urlopen(f"{clean}/healthz", timeout=5) as resp:
        assert resp.status == 200
    # Bound to 0.0.0.0 inside its container, the review tool wants its token.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{clean}/", timeout=5)
    assert refused.value.code in (401, 403)

    def s3(secret: str):  # type: ignore[no-untyped-def]
        return boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{stack['S3_PORT']}",
            region_name="us-east-1",
            aws_access_key_id=stack["S3_ACCESS_KEY"],
            aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 2}),
        )

    # The S3 service made the bucket and accepts only the identity from .env.
    good = s3(stack["S3_SECRET_KEY"])
    good.put_object(Bucket="recyclops", Key="ct/hello.txt", Body=b"hi")
    assert good.get_object(Bucket="recyclops", Key="ct/hello.txt")["Body"].read() == b"hi"
    with pytest.raises(ClientError):
        s3("not-the-secret").get_object(Bucket="recyclops", Key="ct/hello.txt")
