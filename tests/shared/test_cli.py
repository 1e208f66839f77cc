"""The one ``recyclops`` command: every subcommand has --help; the edge never loads TensorFlow."""

import subprocess
import sys

import pytest

from recyclops.app.cli import COMMANDS


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_subcommand_has_help(command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "recyclops.app.cli", command, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: recyclops" in result.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["edge", "--help"],
        ["edge", "run", "--help"],
        ["config", "--help"],
        ["clean", "--help"],
        ["--help"],
    ],
)
def test_light_commands_never_import_tensorflow(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from recyclops.app.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr


def test_unknown_command_fails() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "recyclops.app.cli", "frobnicate"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
