"""Secrets: environment first, then systemd credentials; empty placeholders are ignored."""

from pathlib import Path

from recyclops.shared.secrets import load_aws_credentials_from_directory, mask, read_secret


def test_environment_wins_over_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "mqtt_password").write_text("from-file\n")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    assert read_secret("mqtt_password", env) == (
        "from-file",
        "$CREDENTIALS_DIRECTORY/mqtt_password",
    )
    env["RECYCLOPS_MQTT_PASSWORD"] = "from-env"
    assert read_secret("mqtt_password", env) == ("from-env", "$RECYCLOPS_MQTT_PASSWORD")


def test_empty_placeholders_are_not_secrets(tmp_path: Path) -> None:
    (tmp_path / "mqtt_password").write_text("")
    (tmp_path / "aws_access_key_id").write_text("\n")
    (tmp_path / "aws_secret_access_key").write_text("s3cr3t")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    assert read_secret("mqtt_password", env) == (None, "not set")
    assert load_aws_credentials_from_directory(env) == {"aws_secret_access_key": "s3cr3t"}
    assert load_aws_credentials_from_directory({}) == {}


def test_mask_never_shows_a_short_secret() -> None:
    assert mask("abc") == "****"
    assert mask("abcdefghijkl") == "abcd…"
    assert mask(None) == "(not set)"
