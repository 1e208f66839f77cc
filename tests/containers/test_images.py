"""The images, built and run for real (`make container-test`; minutes, needs root).

No registry can be reached here, so the base image comes from Debian packages
(docker/base-image.sh: debootstrap bookworm with python3, cached under build/base) and is
passed as the Dockerfiles' BASE argument. Containers use the host network, so the review
tool and the jobs reach the tests' SeaweedFS and mosquitto on 127.0.0.1.
"""

import json
import urllib.request
from typing import Any

import pytest
from support.devservers import S3Server, free_port
from support.waiting import wait_until

from .engine import Engine

pytestmark = [pytest.mark.container, pytest.mark.slow]


def s3_env(server: S3Server, url: str) -> dict[str, str]:
    return {
        "RECYCLOPS_STORE__URL": url,
        "RECYCLOPS_STORE__ENDPOINT_URL": server.endpoint_url,
        "RECYCLOPS_STORE__REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def wait_healthy(engine: Engine, cid: str, timeout: float = 90) -> dict:  # type: ignore[type-arg]
    def healthy() -> dict[str, Any] | None:
        state: dict[str, Any] = engine.inspect(cid)["State"]
        assert state["Running"], f"container stopped: {state}"
        return state if state.get("Health", {}).get("Status") == "healthy" else None

    try:
        return wait_until(healthy, timeout, "the container healthy")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{engine.logs_of(cid)[-3000:]}") from None


def test_clean_container_answers_its_health_check(
    engine: Engine, clean_image: str, s3_server: S3Server, s3_url: str
) -> None:
    port = free_port()
    env = {
        **s3_env(s3_server, s3_url),
        "RECYCLOPS_CLEAN__HOST": "127.0.0.1",
        "RECYCLOPS_CLEAN__PORT": str(port),
    }
    # Docker's own HEALTHCHECK (from the Dockerfile), polled faster than in production.
    cid = engine.start(clean_image, env=env, options=("--health-interval=2s",))
    state = wait_healthy(engine, cid)
    assert state["Health"]["Log"][-1]["ExitCode"] == 0
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
        assert resp.status == 200 and json.loads(resp.read())["ok"] is True
    config = engine.inspect(cid)["Config"]
    assert config["User"] == "10001:10001"
    assert "recyclops-healthcheck.py" in " ".join(config["Healthcheck"]["Test"])


def test_clean_image_has_no_tensorflow_and_refuses_a_public_bind_without_token(
    engine: Engine, clean_image: str, s3_server: S3Server, s3_url: str
) -> None:
    out = engine.run(
        clean_image,
        "-c",
        "import importlib.util as u; print(u.find_spec('tensorflow'))",
        options=("--entrypoint", "python3"),
    )
    assert out.returncode == 0 and out.stdout.strip() == "None", out.stderr
    # The image binds 0.0.0.0 by default: without RECYCLOPS_CLEAN_TOKEN it must not serve.
    port = free_port()
    refused = engine.run(
        clean_image,
        env={**s3_env(s3_server, s3_url), "RECYCLOPS_CLEAN__PORT": str(port)},
        timeout=120,
    )
    assert refused.returncode != 0
    assert "token" in (refused.stdout + refused.stderr).lower()
