"""Secrets come from the environment or systemd credentials, never from the config file.

Both are sources of the configuration pipeline (``recyclops.shared.config.pipeline``); these
are its views for the code that needs one secret."""

from collections.abc import Mapping

from .config.pipeline import read_secrets
from .config.sources import SECRETS

AWS_SECRETS = tuple(name for name, var in SECRETS.items() if var is None)


def read_secret(name: str, env: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """Return (value, where it came from) for secret ``name`` (e.g. "mqtt_password").

    Looks at ``RECYCLOPS_<NAME>`` first, then ``$CREDENTIALS_DIRECTORY/<name>`` (systemd's
    ``LoadCredential=``). Returns (None, "not set") when neither has it.
    """
    return read_secrets(env).secret(name)


def load_aws_credentials_from_directory(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """systemd credentials ``aws_access_key_id``/``aws_secret_access_key`` as boto3 kwargs.
    Empty placeholders (the Pi installer creates them) mean "use the chain"."""
    resolved = read_secrets(env)
    return {name: value for name in AWS_SECRETS if (value := resolved.secret(name)[0])}


def mask(value: str | None) -> str:
    if not value:
        return "(not set)"
    return value[:4] + "…" if len(value) > 8 else "****"
