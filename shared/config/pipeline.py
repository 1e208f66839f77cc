"""The one configuration pipeline, on pydantic-settings.

Lowest to highest priority: model defaults, the TOML file, the credentials directory (systemd
``$CREDENTIALS_DIRECTORY``, secrets only), the environment (``RECYCLOPS_<SECTION>__<KEY>``,
``RECYCLOPS_MQTT_PASSWORD``, ``RECYCLOPS_CLEAN_TOKEN``), then command-line flags. Every value
keeps its origin, so ``config check`` can show it and an error can name its file, variable or
flag.
"""

import os
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ..errors import ConfigError
from .root import RecyclopsConfig
from .sources import (
    ENV_LABEL,
    FLAG_LABEL,
    SECRETS,
    CredentialsSource,
    EnvSource,
    FileSource,
    FlagSource,
    Labelled,
    Overrides,
    Path_,
    ValuesSource,
    leaves,
)

_ACTIVE: ContextVar["_Run | None"] = ContextVar("recyclops_config_run", default=None)


@dataclass
class _Run:
    """The inputs of one resolution, and the sources built from them (highest first)."""

    env: Mapping[str, str]
    path: Path | None = None
    flags: Overrides = field(default_factory=Overrides)
    base: dict[str, Any] | None = None
    sections: bool = True
    sources: list[Labelled] = field(default_factory=list)

    def build(self, settings_cls: type[BaseSettings]) -> tuple[PydanticBaseSettingsSource, ...]:
        out: list[Any] = []
        if self.flags:
            out.append(FlagSource(settings_cls, self.flags))
        if self.base is not None:
            out.append(ValuesSource(settings_cls, self.base, "the configuration loaded before"))
        else:
            out.append(EnvSource(settings_cls, self.env, unknown_sections=self.sections))
            out.append(CredentialsSource(settings_cls, self.env.get("CREDENTIALS_DIRECTORY")))
            if self.path is not None:
                out.append(FileSource(settings_cls, self.path))
        self.sources = out
        return tuple(out)

    def source_of(self, path: Path_) -> tuple[Labelled | None, Path_]:
        """The highest source that set ``path``, a value under it or a table holding it."""
        for source in self.sources:
            for leaf, _ in leaves(getattr(source, "data", {})):
                n = min(len(leaf), len(path))
                if leaf[:n] == path[:n]:
                    return source, max(leaf, path, key=len)
        return None, path

    def origin(self, path: Path_) -> str:
        source, where = self.source_of(path)
        return "default" if source is None else source.origin(where)


class SecretSettings(BaseSettings):
    """The secrets: from the environment or the credentials directory, never from a file or
    a flag. Excluded from every dump; shown only masked."""

    model_config = SettingsConfigDict(extra="forbid", validate_assignment=True, case_sensitive=True)

    mqtt_password: SecretStr | None = Field(None, exclude=True, title="MQTT password")
    mqtt_client_key: SecretStr | None = Field(None, exclude=True, title="MQTT client key (PEM)")
    clean_token: SecretStr | None = Field(None, exclude=True, title="Review tool token")
    aws_access_key_id: SecretStr | None = Field(None, exclude=True)
    aws_secret_access_key: SecretStr | None = Field(None, exclude=True)
    aws_session_token: SecretStr | None = Field(None, exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        run = _ACTIVE.get()
        if run is None:  # built in code: a plain model, no environment read
            return (init_settings,)
        return (init_settings, *run.build(settings_cls))


class RecyclopsSettings(SecretSettings, RecyclopsConfig):  # type: ignore[misc]  # both configs
    """The whole configuration plus the secrets, as the pipeline resolves it."""


def explain(exc: ValidationError, run: _Run, fallback: str) -> str:
    """One line per error naming its source: the file, the variable or the flag."""
    lines = []
    for item in exc.errors():
        loc = tuple(str(p) for p in item["loc"])
        where = ".".join(loc) or "(top level)"
        msg = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        got = item.get("input")
        hidden = item["type"] in ("extra_forbidden", "missing") or isinstance(got, dict)
        shown = "" if hidden or (loc and loc[0] in SECRETS) else f" (got {got!r})"
        source, leaf = run.source_of(loc)
        if isinstance(source, FlagSource):
            flag = source.origin(leaf)
            name = flag.lstrip("-").replace("-", "_")
            lines.append(f"{FLAG_LABEL}: {name}: {msg}{shown} ({flag} sets {where})")
        elif isinstance(source, EnvSource):
            lines.append(f"{ENV_LABEL}: {where}: {msg}{shown} (from {source.origin(leaf)})")
        else:
            label = fallback if source is None else source.label
            lines.append(f"{label}: {where}: {msg}{shown}")
    return "\n".join(lines)


def _build(cls: type[SecretSettings], run: _Run, fallback: str) -> Any:
    token = _ACTIVE.set(run)
    try:
        return cls()
    except ValidationError as exc:
        raise ConfigError(explain(exc, run, fallback)) from None
    finally:
        _ACTIVE.reset(token)


def _plain(settings: RecyclopsSettings) -> RecyclopsConfig:
    """The configuration without the secrets (its parts are validated already)."""
    names = RecyclopsConfig.model_fields
    return RecyclopsConfig.model_construct(
        _fields_set=settings.model_fields_set & set(names),
        **{name: getattr(settings, name) for name in names},
    )


@dataclass(frozen=True)
class Resolved:
    """A resolved configuration, its secrets and where each value came from."""

    config: RecyclopsConfig
    secrets: dict[str, str | None]
    run: _Run

    def origin(self, path: Path_) -> str:
        """``file PATH``, ``$VARIABLE``, ``$CREDENTIALS_DIRECTORY/NAME``, ``--flag``, default."""
        return self.run.origin(path)

    def secret(self, name: str) -> tuple[str | None, str]:
        value = self.secrets.get(name)
        return (value, self.origin((name,))) if value else (None, "not set")


def _secrets(settings: SecretSettings) -> dict[str, str | None]:
    values = {name: getattr(settings, name) for name in SECRETS}
    return {k: v.get_secret_value() if v is not None else None for k, v in values.items()}


def resolve(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Overrides | None = None,
) -> Resolved:
    """Run the pipeline: defaults, ``path``, credentials, ``env`` (default: the process
    environment), ``flags``."""
    run = _Run(
        env=os.environ if env is None else env,
        path=None if path is None else Path(path),
        flags=flags or Overrides(),
    )
    settings = _build(RecyclopsSettings, run, "<defaults>" if path is None else str(path))
    return Resolved(_plain(settings), _secrets(settings), run)


def load(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Overrides | None = None,
) -> RecyclopsConfig:
    """The configuration from ``path`` (or only defaults when None), the environment and the
    flags. Errors (:class:`ConfigError`) name the file, variable or flag at fault."""
    return resolve(path, env, flags).config


def apply_flags(config: RecyclopsConfig, flags: Overrides) -> RecyclopsConfig:
    """``config`` with command-line flags on top, validated as in :func:`load`."""
    if not flags:
        return config
    run = _Run(env={}, flags=flags, base=config.model_dump(mode="json"))
    return _plain(_build(RecyclopsSettings, run, FLAG_LABEL))


def read_secrets(env: Mapping[str, str] | None = None) -> Resolved:
    """Only the secrets (no file, no other setting read), through the same sources."""
    run = _Run(env=os.environ if env is None else env, sections=False)
    settings = _build(SecretSettings, run, "<environment>")
    return Resolved(RecyclopsConfig(), _secrets(settings), run)
