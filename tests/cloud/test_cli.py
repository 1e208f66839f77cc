"""The cloud subcommands: lazy imports, flags over the config file, setup and publish by CLI."""

import subprocess
import sys

import pytest

from recyclops.app.cli import build_parser, main
from recyclops.cloud.cli.common import train_config
from recyclops.shared.config import load
from recyclops.shared.errors import ConfigError
from recyclops.shared.store import LocalStore

from .helpers import TINY_TOML, seed_images


def test_parsers_never_import_tensorflow():
    code = (
        "import sys\n"
        "from recyclops.app.cli import build_parser\n"
        "for name in ('setup', 'train', 'search', 'publish'):\n"
        "    build_parser(name).parse_args([name] + (['RUN'] if name == 'publish' else []))\n"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_flags_override_the_config_file():
    args = build_parser("train").parse_args(
        ["train", "-c", str(TINY_TOML), "--epochs", "3", "--no-augment", "--optimizer", "rmsprop"]
    )
    cfg = train_config(args, load(args.config))
    assert (cfg.epochs, cfg.augment, cfg.optimizer) == (3, False, "rmsprop")
    assert cfg.image_size == 48 and cfg.weights == "none"  # from the file
    bad = build_parser("train").parse_args(["train", "--dropout", "1.5"])
    with pytest.raises(ConfigError, match="dropout"):
        train_config(bad, load(None))


def test_setup_and_publish_commands(tmp_path, capsys):
    store = LocalStore(tmp_path / "store")
    seed_images(store, ["cardboard", "glass"], per_class=2)
    out = tmp_path / "data"
    assert main(["setup", "--store", store.url, "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "4 images" in text and "no verified images yet" in text  # metal, paper, … are empty
    assert len(list(out.glob("*/*.jpg"))) == 4
    assert main(["publish", str(tmp_path / "nowhere"), "--store", store.url, "--no-notify"]) == 1
    assert "expected a run folder" in capsys.readouterr().err
