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


# ---- the pipeline: file < credentials < environment < flags, each value with its origin ----


def test_each_layer_overrides_the_one_below_and_says_so(tmp_path: Path) -> None:
    from recyclops.shared.config import Overrides, resolve

    path = write(tmp_path, '[store]\nurl = "file:///a"\n[mqtt]\nhost = "h"\nport = 1000\n')
    flags = Overrides({"mqtt": {"port": 3000}}, {("mqtt", "port"): "--port"})
    env = {"RECYCLOPS_MQTT__HOST": "from-env", "RECYCLOPS_MQTT__PORT": "2000"}
    resolved = resolve(path, env=env, flags=flags)
    assert (resolved.config.mqtt.host, resolved.config.mqtt.port) == ("from-env", 3000)
    assert resolved.origin(("store", "url")) == f"file {path}"
    assert resolved.origin(("mqtt", "host")) == "$RECYCLOPS_MQTT__HOST"
    assert resolved.origin(("mqtt", "port")) == "--port"
    assert resolved.origin(("mqtt", "keepalive")) == "default"


def test_env_values_keep_their_meaning(tmp_path: Path) -> None:
    """Text fields take the text; others parse as JSON; ``null`` is None; tables go deep."""
    config = load(
        None,
        env={
            "RECYCLOPS_EDGE__DEVICE_ID": "123",
            "RECYCLOPS_STORE__ENDPOINT_URL": "null",
            "RECYCLOPS_EDGE__OUTPUTS__PINS__GLASS__PIN": "17",
            "RECYCLOPS_EDGE__KEYPAD__ROW_PINS": "[5, 6]",
            "recyclops_train__epochs": "4",  # names are not case-sensitive
            "RECYCLOPS_CATEGORIES": '["glass", "metal"]',
            "RECYCLOPS_TRAIN_ARGS": "--epochs 3",  # no __: a job script's, not the config's
        },
    )
    assert config.edge.device_id == "123" and config.store.endpoint_url is None
    assert config.edge.outputs.pins["glass"].pin == 17
    assert config.edge.keypad.row_pins == [5, 6] and config.train.epochs == 4
    assert config.category_names == ["glass", "metal"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"RECYCLOPS_STORE__BUKKET": "b"},
            "store.bukket: unknown key (from $RECYCLOPS_STORE__BUKKET)",
        ),
        ({"RECYCLOPS_STOER__URL": "s3://b"}, "stoer: unknown key (from $RECYCLOPS_STOER__URL)"),
        ({"RECYCLOPS_MQTT__PASSWORD": "p"}, "mqtt.password: unknown key"),
        ({"RECYCLOPS_CATEGORIES": "glass,metal"}, "categories: a list or table must be JSON"),
    ],
)
def test_unknown_or_malformed_variables_are_named(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(None, env=env)
    assert str(err.value).startswith("RECYCLOPS_* environment: ")
    assert expected in str(err.value)


def test_a_secret_field_in_the_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, 'mqtt_password = "hunter2"\n')
    with pytest.raises(ConfigError, match="mqtt_password: secrets are never read"):
        load(path, env={})


def test_secrets_resolve_with_their_origin_and_stay_out_of_dumps(tmp_path: Path) -> None:
    from recyclops.shared.config import resolve

    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt_password").write_text("from-credentials\n")
    (creds / "clean_token").write_text("")  # an install placeholder
    env = {"CREDENTIALS_DIRECTORY": str(creds), "RECYCLOPS_CLEAN_TOKEN": ""}
    resolved = resolve(None, env=env)
    assert resolved.secret("mqtt_password") == (
        "from-credentials",
        "$CREDENTIALS_DIRECTORY/mqtt_password",
    )
    assert resolved.secret("clean_token") == (None, "not set")
    assert "from-credentials" not in resolved.config.model_dump_json()
    env["RECYCLOPS_MQTT_PASSWORD"] = "from-env"
    assert resolve(None, env=env).secret("mqtt_password") == (
        "from-env",
        "$RECYCLOPS_MQTT_PASSWORD",
    )


def test_a_flag_error_names_the_flag_and_the_key(tmp_path: Path) -> None:
    from recyclops.shared.config import Overrides

    flags = Overrides({"clean": {"port": 70000}}, {("clean", "port"): "--port"})
    with pytest.raises(ConfigError) as err:
        load(None, env={}, flags=flags)
    assert str(err.value) == (
        "command line: port: Input should be less than or equal to 65535 (got 70000) "
        "(--port sets clean.port)"
    )


def test_the_three_clis_turn_flags_into_overrides_one_way(tmp_path: Path) -> None:
    from recyclops.app.cli import build_parser
    from recyclops.cloud.cli.common import load_config
    from recyclops.console.cli import FLAGS as CLEAN_FLAGS
    from recyclops.edge.cli import apply_overrides
    from recyclops.shared.config import from_args

    path = write(tmp_path, "[edge.camera]\nfps = 4.0\n[clean]\nport = 9000\n[train]\nepochs = 7\n")
    edge = build_parser("edge").parse_args(
        ["edge", "run", "-c", str(path), "--camera-folder", "/x", "--no-live-view"]
    )
    config = apply_overrides(load(path, env={}), edge)
    assert (config.edge.camera.kind, config.edge.camera.source) == ("replay", "/x")
    assert config.edge.camera.fps == 4.0 and config.edge.live_view.enabled is False
    bad = build_parser("edge").parse_args(["edge", "run", "--fps", "0"])
    with pytest.raises(ConfigError, match=r"command line: fps: .*\(--fps sets edge.camera.fps\)"):
        apply_overrides(load(None, env={}), bad)

    clean = build_parser("clean").parse_args(["clean", "--host", "0.0.0.0", "--presign"])
    config = load(path, env={}, flags=from_args(clean, CLEAN_FLAGS))
    assert (config.clean.host, config.clean.port, config.clean.presign) == ("0.0.0.0", 9000, True)

    train = build_parser("train").parse_args(["train", "-c", str(path), "--store", "file:///s"])
    config = load_config(train)
    assert config.train.epochs == 7 and config.store.url == "file:///s"
    train = build_parser("train").parse_args(["train", "-c", str(path), "--epochs", "2"])
    assert load_config(train).train.epochs == 2


def test_config_check_says_where_each_value_came_from(tmp_path: Path) -> None:
    import json
    import os

    path = write(tmp_path, '[mqtt]\nhost = "broker.local"\n')
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "clean_token").write_text("token-from-credentials\n")
    env = {**os.environ, "RECYCLOPS_MQTT__PORT": "8883", "CREDENTIALS_DIRECTORY": str(creds)}
    env.pop("RECYCLOPS_CLEAN_TOKEN", None)
    result = run_cli("config", "check", str(path), env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f'host = "broker.local"  # file {path}' in out
    assert "port = 8883  # $RECYCLOPS_MQTT__PORT" in out
    assert "keepalive = 30  # default" in out
    assert 'clean_token = "toke… ($CREDENTIALS_DIRECTORY/clean_token)"' in out
    assert "token-from-credentials" not in out
    result = run_cli("config", "check", str(path), "--json", env=env)
    origins = json.loads(result.stdout)["origins"]
    assert (
        origins["mqtt.host"] == f"file {path}" and origins["mqtt.port"] == "$RECYCLOPS_MQTT__PORT"
    )
