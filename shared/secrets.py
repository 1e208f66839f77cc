"""Secrets come from the environment or systemd credentials, never from the config file."""

import os
from collections.abc import Mapping
from pathlib import Path


def read_secret(name: str, env: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """Return (value, where it came from) for secret ``name`` (e.g. "mqtt_password").

    Looks at ``RECYCLOPS_<NAME>`` first, then ``$CREDENTIALS_DIRECTORY/<name>`` (systemd's
    ``LoadCredential=``). Returns (None, "not set") when neither has it.
    """
    env = os.environ if env is None else env
    var = f"RECYCLOPS_{name.upper()}"
    if env.get(var):
        return env[var], f"${var}"
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        path = Path(cred_dir) / name
        value = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
        if value:  # an empty file is an install placeholder, not a secret
            return value, f"$CREDENTIALS_DIRECTORY/{name}"
    return None, "not set"


def load_aws_credentials_from_directory(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """systemd credentials ``aws_access_key_id``/``aws_secret_access_key`` as boto3 kwargs."""
    env = os.environ if env is None else env
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    out: dict[str, str] = {}
    if not cred_dir:
        return out
    for name in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token"):
        path = Path(cred_dir) / name
        value = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
        if value:  # empty placeholders (the Pi installer creates them) mean "use the chain"
            out[name] = value
    return out


def mask(value: str | None) -> str:
    if not value:
        return "(not set)"
    return value[:4] + "…" if len(value) > 8 else "****"
