"""``recyclops config check FILE``: the resolved config with secrets masked, or the errors."""

import argparse
import json
import os
import sys

from . import config as cfg
from .commands import AddCommon
from .errors import ConfigError
from .secrets import mask, read_secret

HELP = "check a configuration file"


def configure(parser: argparse.ArgumentParser, add_common: AddCommon) -> None:
    subs = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = subs.add_parser("check", help="validate FILE and print the resolved configuration")
    check.add_argument("file", metavar="FILE", help="TOML configuration file")
    check.add_argument("--json", action="store_true", help="print JSON instead of TOML")
    add_common(check, config=False)
    check.set_defaults(func=run_check)
    ref = subs.add_parser("reference", help="print the configuration reference (markdown)")
    add_common(ref, config=False)
    ref.set_defaults(func=run_reference)


def secrets_summary() -> dict[str, str]:
    """Where each secret would come from, values masked."""
    out: dict[str, str] = {}
    for name in ("mqtt_password", "clean_token"):
        value, where = read_secret(name)
        out[name] = f"{mask(value)} ({where})"
    key = os.environ.get("AWS_ACCESS_KEY_ID")
    out["aws_credentials"] = (
        f"{mask(key)} ($AWS_ACCESS_KEY_ID)" if key else "boto3 standard chain (profile, IAM role)"
    )
    return out


def run_check(args: argparse.Namespace) -> int:
    try:
        config = cfg.load(args.file)
    except ConfigError as exc:
        print(f"invalid configuration:\n{exc}", file=sys.stderr)
        return 1
    problems = config.key_map_problems()
    if problems:
        lines = "\n".join(f"{args.file}: {p}" for p in problems)
        print(f"invalid configuration:\n{lines}", file=sys.stderr)
        return 1
    data = config.model_dump(mode="json", exclude_none=True)
    data["secrets (from the environment, masked)"] = secrets_summary()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        import tomli_w

        print(tomli_w.dumps(data), end="")
    print(f"{args.file}: OK", file=sys.stderr)
    return 0


def run_reference(args: argparse.Namespace) -> int:
    from .config.reference import reference_markdown

    sys.stdout.write(reference_markdown())
    return 0
