"""Configuration: strict keys, clear errors, env overrides, secrets only from the environment."""

import subprocess
import sys
from pathlib import Path

import pytest

from recyclops.shared.config import load
from recyclops.shared.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recyclops.toml"
    path.write_text(text)
    return path


def test_defaults_have_the_six_trashnet_categories() -> None:
    config = load(None, env={})
    assert config.category_names == ["cardboard", "glass", "metal", "paper", "plastic", "trash"]
    assert [c.key for c in config.categories] == ["1", "2", "3", "4", "5", "6"]


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[store]\nurl = "file:///x"\nbukket = "b"\n')
    with pytest.raises(ConfigError) as err:
        load(path, env={})
    assert f"{path}: store.bukket: unknown key" in str(err.value)


def test_wrong_type_and_bounds_say_what_was_expected(tmp_path: Path) -> None:
    path = write(tmp_path, '[mqtt]\nport = 70000\n[train]\nbatch_size = "lots"\n')
    with pytest.raises(ConfigError) as err:
        load(path, env={})
    text = str(err.value)
    assert "mqtt.port: Input should be less than or equal to 65535 (got 70000)" in text
    assert "train.batch_size: Input should be a valid integer" in text


def test_malformed_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(write(tmp_path, "[store\nurl=1"), env={})
    with pytest.raises(ConfigError, match="no such file"):
        load(tmp_path / "absent.toml", env={})


def test_secrets_in_the_file_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[mqtt]\nhost = "b"\npassword = "hunter2"\n')
    with pytest.raises(ConfigError, match=r"mqtt\.password: secrets are never read"):
        load(path, env={})


def test_env_overrides_nested_keys(tmp_path: Path) -> None:
    path = write(tmp_path, '[store]\nurl = "file:///a"\n')
    config = load(
        path,
        env={
            "RECYCLOPS_STORE__URL": "s3://bucket/p",
            "RECYCLOPS_MQTT__PORT": "8883",
            "RECYCLOPS_MQTT__TLS": "true",
            "RECYCLOPS_MQTT_PASSWORD": "not an override",
        },
    )
    assert config.store.url == "s3://bucket/p"
    assert config.mqtt.port == 8883 and config.mqtt.tls is True


def test_env_override_errors_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"RECYCLOPS_\* environment: mqtt.port"):
        load(None, env={"RECYCLOPS_MQTT__PORT": "many"})


def test_sixteen_categories_get_distinct_keys(tmp_path: Path) -> None:
    names = [f"c{i:02d}" for i in range(16)]
    path = write(tmp_path, f"categories = {names!r}\n".replace("'", '"'))
    config = load(path, env={})
    keys = [c.key for c in config.categories]
    assert len(set(keys)) == 16
    assert keys[:10] == list("1234567890")


def test_duplicate_and_reserved_categories(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="duplicate category names: glass"):
        load(write(tmp_path, 'categories = ["glass", "glass", "metal"]\n'), env={})
    with pytest.raises(ConfigError, match="duplicate category keys: 1"):
        load(write(tmp_path, 'categories = [{name="a", key="1"}, {name="b", key="1"}]\n'), env={})
    with pytest.raises(ConfigError, match="'invalid' is reserved"):
        load(write(tmp_path, 'categories = ["glass", "invalid"]\n'), env={})
    with pytest.raises(ConfigError, match="key 's' is reserved"):
        load(write(tmp_path, 'categories = [{name="a", key="s"}, {name="b", key="2"}]\n'), env={})


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recyclops.app.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_config_check_prints_resolved_config_with_secrets_masked(tmp_path: Path) -> None:
    import os

    path = write(tmp_path, '[mqtt]\nhost = "broker.local"\nusername = "bin"\n')
    env = {**os.environ, "RECYCLOPS_MQTT_PASSWORD": "supersecretvalue"}
    result = run_cli("config", "check", str(path), env=env)
    assert result.returncode == 0, result.stderr
    assert 'host = "broker.local"' in result.stdout
    assert "supersecretvalue" not in result.stdout
    assert "supe…" in result.stdout and "$RECYCLOPS_MQTT_PASSWORD" in result.stdout


def test_config_check_fails_with_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "[edge]\ndevice_id = '../etc'\nwhat = 1\n")
    result = run_cli("config", "check", str(path))
    assert result.returncode == 1
    assert "edge.what: unknown key" in result.stderr
    assert "edge.device_id" in result.stderr


def test_configuration_reference_in_docs_is_current() -> None:
    from recyclops.shared.config.reference import reference_markdown

    docs = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
    assert docs.read_text() == reference_markdown(), (
        "docs/configuration.md is stale: run `recyclops config reference > docs/configuration.md`"
    )
