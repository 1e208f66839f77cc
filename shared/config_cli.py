"""``recyclops config check FILE``: the resolved config with where each value came from and
the secrets masked, or the errors."""

import argparse
import json
import os
import re
import sys

from . import config as cfg
from .commands import AddCommon
from .config.sources import SECRETS, leaves
from .errors import ConfigError
from .secrets import mask

HELP = "check a configuration file"
SECRETS_TABLE = "secrets (masked; from the environment or $CREDENTIALS_DIRECTORY)"
_KEY = re.compile(r'^("(?:[^"\\]|\\.)*"|[A-Za-z0-9_-]+) = ')


def configure(parser: argparse.ArgumentParser, add_common: AddCommon) -> None:
    subs = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = subs.add_parser(
        "check",
        help="validate FILE and print the resolved configuration",
        description="Validate FILE with the environment and credentials on top and print the "
        "result; a comment on each line says where the value came from.",
    )
    check.add_argument("file", metavar="FILE", help="TOML configuration file")
    check.add_argument("--json", action="store_true", help="print JSON instead of TOML")
    add_common(check, config=False)
    check.set_defaults(func=run_check)
    ref = subs.add_parser("reference", help="print the configuration reference (markdown)")
    add_common(ref, config=False)
    ref.set_defaults(func=run_reference)


def secrets_summary(resolved: cfg.Resolved) -> dict[str, str]:
    """Where each secret comes from, values masked."""
    out: dict[str, str] = {}
    for name, var in SECRETS.items():
        value, where = resolved.secret(name)
        if var is not None or value:
            out[name] = f"{mask(value)} ({where})" if value else "(not set)"
    if not any(resolved.secret(name)[0] for name, var in SECRETS.items() if var is None):
        key = os.environ.get("AWS_ACCESS_KEY_ID")
        out["aws_credentials"] = (
            f"{mask(key)} ($AWS_ACCESS_KEY_ID)"
            if key
            else "boto3 standard chain (profile, IAM role)"
        )
    return out


def _key(text: str) -> str:
    return str(json.loads(text)) if text.startswith('"') else text


def annotate(toml_text: str, resolved: cfg.Resolved) -> str:
    """Each ``key = value`` line of the resolved TOML with ``# <origin>``."""
    out: list[str] = []
    table: tuple[str, ...] = ()
    for line in toml_text.splitlines():
        if line.startswith("[") and not line.startswith("[["):
            table = tuple(_key(p) for p in re.findall(r'"(?:[^"\\]|\\.)*"|[^.\[\]]+', line))
        match = _KEY.match(line)
        if match:
            line = f"{line}  # {resolved.origin((*table, _key(match.group(1))))}"
        out.append(line)
    return "\n".join(out) + "\n"


def run_check(args: argparse.Namespace) -> int:
    try:
        resolved = cfg.resolve(args.file)
    except ConfigError as exc:
        print(f"invalid configuration:\n{exc}", file=sys.stderr)
        return 1
    config = resolved.config
    problems = config.key_map_problems()
    if problems:
        lines = "\n".join(f"{args.file}: {p}" for p in problems)
        print(f"invalid configuration:\n{lines}", file=sys.stderr)
        return 1
    data = config.model_dump(mode="json", exclude_none=True)
    secrets = secrets_summary(resolved)
    if args.json:
        full = config.model_dump(mode="json")
        origins = {".".join(p): resolved.origin(p) for p, _ in leaves(full)}
        data[SECRETS_TABLE] = secrets
        print(json.dumps({**data, "origins": origins}, indent=2))
    else:
        import tomli_w

        text = annotate(tomli_w.dumps(data), resolved)
        print(text + "\n" + tomli_w.dumps({SECRETS_TABLE: secrets}), end="")
    print(f"{args.file}: OK", file=sys.stderr)
    return 0


def run_reference(args: argparse.Namespace) -> int:
    from .config.reference import reference_markdown

    sys.stdout.write(reference_markdown())
    return 0
