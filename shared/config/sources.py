"""The pydantic-settings sources of the one configuration pipeline, each remembering what it
supplied so that ``config check`` can say where a value came from and an error can name the
file, variable, credential or flag that caused it."""

import copy
import json
import re
import tomllib
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_settings import (
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    TomlConfigSettingsSource,
)
from pydantic_settings.exceptions import SettingsError

from ..errors import ConfigError

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

ENV_PREFIX = "RECYCLOPS_"
ENV_LABEL = "RECYCLOPS_* environment"
FLAG_LABEL = "command line"
#: Keys that look like secrets: refused in files so nobody commits one by accident.
SECRET_KEYS = frozenset(
    {"password", "secret", "token", "aws_secret_access_key", "aws_access_key_id", "secret_key"}
)
#: The secrets, by their credentials-file name, with the variable that may hold each (None:
#: boto3 reads AWS_* itself). Top-level fields of the settings, never of the file.
SECRETS: dict[str, str | None] = {
    "mqtt_password": "RECYCLOPS_MQTT_PASSWORD",
    "mqtt_client_key": "RECYCLOPS_MQTT_CLIENT_KEY",
    "clean_token": "RECYCLOPS_CLEAN_TOKEN",
    "aws_access_key_id": None,
    "aws_secret_access_key": None,
    "aws_session_token": None,
}

Path_ = tuple[str, ...]


def leaves(tree: Mapping[str, Any], prefix: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """(path, value) of every non-table value; lists are values, not walked into."""
    for key, value in tree.items():
        here = (*prefix, str(key))
        if isinstance(value, Mapping) and value:
            yield from leaves(value, here)
        else:
            yield here, value


def find_secrets(tree: Any, path: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            here = f"{path}.{key}" if path else str(key)
            if str(key).lower() in SECRET_KEYS or (not path and key in SECRETS):
                found.append(here)
            found += find_secrets(value, here)
    return found


def secrets_refused(source: str, secrets: list[str]) -> str:
    return (
        f"{source}: {', '.join(secrets)}: secrets are never read from the config file; "
        "use the environment (RECYCLOPS_MQTT_PASSWORD, RECYCLOPS_MQTT_CLIENT_KEY, "
        "RECYCLOPS_CLEAN_TOKEN, AWS_*), the AWS credential chain or $CREDENTIALS_DIRECTORY"
    )


@dataclass(frozen=True)
class Overrides:
    """Values set on the command line: a nested tree plus the flag behind each leaf."""

    values: dict[str, Any] = field(default_factory=dict)
    flags: dict[Path_, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.flags)


class Labelled:
    """What every pipeline source adds: a label for messages and the origin of each leaf."""

    label: str = "?"
    data: dict[str, Any]

    def origin(self, path: Path_) -> str:
        return self.label

    def record(self, data: dict[str, Any]) -> dict[str, Any]:
        self.data = data
        return data


class FileSource(Labelled, TomlConfigSettingsSource):
    """The TOML file; a missing or malformed file and any secret in it are errors."""

    def __init__(self, settings_cls: "type[BaseSettings]", path: Path) -> None:
        self.label = str(path)
        if not path.exists():
            raise ConfigError(f"{path}: no such file")
        if not path.is_file():
            raise ConfigError(f"{path}: cannot read: not a file")
        super().__init__(settings_cls, toml_file=path)
        secrets = find_secrets(self.toml_data)
        if secrets:
            raise ConfigError(secrets_refused(str(path), secrets))

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        try:
            return super()._read_file(file_path)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{self.label}: not valid TOML: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{self.label}: cannot read: {exc}") from None

    def __call__(self) -> dict[str, Any]:
        return self.record(super().__call__())

    def origin(self, path: Path_) -> str:
        return f"file {self.label}"


def _keeps_text(annotation: Any) -> bool:
    """Whether a variable's text goes to this field as it is (no JSON parsing of '123')."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _keeps_text(typing.get_args(annotation)[0])
    if origin is Literal:
        return True
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return all(_keeps_text(a) for a in inner)
    return annotation is str


def _annotation_at(model: type[BaseModel], path: Path_) -> Any:
    annotation: Any = model
    for key in path:
        bare = annotation
        if typing.get_origin(bare) in (typing.Union, types.UnionType):
            bare = next(a for a in typing.get_args(bare) if a is not type(None))
        if isinstance(bare, type) and issubclass(bare, BaseModel):
            info = bare.model_fields.get(key)
            if info is None:
                return None
            annotation = info.annotation
        elif typing.get_origin(bare) is dict:
            annotation = typing.get_args(bare)[1]
        else:
            return None
    return annotation


def parse_env_value(raw: str, annotation: Any) -> Any:
    """``null`` is None; text fields take the text; others take it as JSON when it parses."""
    if raw == "null":
        return None
    if _keeps_text(annotation):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


class EnvSource(Labelled, EnvSettingsSource):
    """``RECYCLOPS_<SECTION>__<KEY>`` (``__`` between levels) and the secret variables."""

    label = ENV_LABEL

    def __init__(
        self,
        settings_cls: "type[BaseSettings]",
        environ: Mapping[str, str],
        unknown_sections: bool = True,
    ) -> None:
        self._environ = environ
        self.unknown_sections = unknown_sections
        super().__init__(
            settings_cls, case_sensitive=False, env_prefix=ENV_PREFIX, env_nested_delimiter="__"
        )

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._environ.items() if k.upper().startswith(ENV_PREFIX)}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field_name in SECRETS and SECRETS[field_name] is None:
            return None, field_name, False  # AWS_*: boto3's own chain reads those
        return super().get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        try:
            data = super().__call__()
        except SettingsError as exc:  # a table or list variable that is not JSON
            found = re.search(r'field "(\w+)"', str(exc))
            name = found.group(1) if found else "?"
            var = f"{ENV_PREFIX}{name.upper()}"
            var = var if var.lower() in self.env_vars else f"{var}__…"
            raise ConfigError(
                f"{ENV_LABEL}: {name}: a list or table must be JSON ({exc.__cause__}) (from ${var})"
            ) from None
        for name in SECRETS:
            if not data.get(name):  # an empty variable is no secret
                data.pop(name, None)
        for var, raw in self.env_vars.items():  # sections that do not exist: unknown keys
            parts = var[len(ENV_PREFIX) :].split("__")
            known = parts[0] in self.settings_cls.model_fields
            if self.unknown_sections and len(parts) > 1 and not known and raw is not None:
                node = data
                for part in parts[:-1]:
                    node = node.setdefault(part, {})
                node[parts[-1]] = raw
        for path, value in list(leaves(data)):
            if len(path) > 1 and isinstance(value, str):
                node = data
                for part in path[:-1]:
                    node = node[part]
                node[path[-1]] = parse_env_value(value, _annotation_at(self.settings_cls, path))
        return self.record(data)

    def origin(self, path: Path_) -> str:
        if path and path[0] in SECRETS:
            return f"${SECRETS[path[0]]}"
        names = {tuple(v[len(ENV_PREFIX) :].split("__")): v.upper() for v in self.env_vars}
        for n in range(len(path), 0, -1):
            if path[:n] in names:
                return f"${names[path[:n]]}"
        return self.label


class CredentialsSource(Labelled, SecretsSettingsSource):
    """systemd credentials (``LoadCredential=``): ``$CREDENTIALS_DIRECTORY/<secret name>``.
    Only the secrets are read there; an empty file is an install placeholder, not a secret."""

    label = "$CREDENTIALS_DIRECTORY"

    def __init__(self, settings_cls: "type[BaseSettings]", directory: str | None) -> None:
        usable = directory if directory and Path(directory).is_dir() else None
        super().__init__(settings_cls, secrets_dir=usable, case_sensitive=True, env_prefix="")

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field_name not in SECRETS:
            return None, field_name, False
        return super().get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        return self.record({k: v for k, v in super().__call__().items() if v})

    def origin(self, path: Path_) -> str:
        return f"$CREDENTIALS_DIRECTORY/{path[0]}"


class ValuesSource(Labelled, PydanticBaseSettingsSource):
    """A ready tree of values: command-line flags, or a configuration loaded before."""

    def __init__(
        self, settings_cls: "type[BaseSettings]", values: dict[str, Any], label: str
    ) -> None:
        super().__init__(settings_cls)
        self.values = values
        self.label = label

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return self.record(copy.deepcopy(self.values))  # the merge may change what it gets


class FlagSource(ValuesSource):
    def __init__(self, settings_cls: "type[BaseSettings]", overrides: Overrides) -> None:
        super().__init__(settings_cls, overrides.values, FLAG_LABEL)
        self.flags = overrides.flags

    def origin(self, path: Path_) -> str:
        for n in range(len(path), 0, -1):
            if path[:n] in self.flags:
                return self.flags[path[:n]]
        return self.label
