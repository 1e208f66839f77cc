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


def test_an_empty_variable_falls_back_to_the_credentials_file(tmp_path: Path) -> None:
    (tmp_path / "clean_token").write_text("from-file\n")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), "RECYCLOPS_CLEAN_TOKEN": ""}
    assert read_secret("clean_token", env) == ("from-file", "$CREDENTIALS_DIRECTORY/clean_token")


def test_a_missing_credentials_directory_means_no_secret(tmp_path: Path) -> None:
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path / "absent")}
    assert read_secret("mqtt_password", env) == (None, "not set")
    assert load_aws_credentials_from_directory(env) == {}


def test_aws_variables_are_left_to_boto3(tmp_path: Path) -> None:
    """Only the credentials directory is handed to boto3: AWS_* it reads itself."""
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), "AWS_ACCESS_KEY_ID": "from-env"}
    assert load_aws_credentials_from_directory(env) == {}


def test_secrets_do_not_need_a_valid_configuration(tmp_path: Path) -> None:
    """A bad RECYCLOPS_SECTION__KEY is the config's error, not the secret reader's."""
    env = {"RECYCLOPS_MQTT__PORT": "many", "RECYCLOPS_MQTT_PASSWORD": "p"}
    assert read_secret("mqtt_password", env) == ("p", "$RECYCLOPS_MQTT_PASSWORD")
