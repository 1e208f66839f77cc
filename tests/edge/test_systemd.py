"""The systemd unit passes ``systemd-analyze verify`` and keeps its promises."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EDGE = Path(__file__).resolve().parents[2] / "edge"
UNIT = EDGE / "systemd" / "recyclops-edge.service"


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def local_copy(tmp_path: Path, text: str | None = None) -> Path:
    """ExecStart must exist for verify: point it at this venv's recyclops."""
    exe = Path(sys.executable).parent / "recyclops"
    body = (text or UNIT.read_text()).replace("/opt/recyclops/venv/bin/recyclops", str(exe))
    path = tmp_path / UNIT.name
    path.write_text(body)
    return path


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)
def test_unit_verifies_cleanly(tmp_path: Path) -> None:
    out = verify(local_copy(tmp_path))
    assert out.returncode == 0 and not out.stderr.strip(), out.stderr


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)
def test_verify_would_catch_a_broken_unit(tmp_path: Path) -> None:
    broken = local_copy(tmp_path, UNIT.read_text().replace("Type=notify", "Type=notifyy"))
    out = verify(broken)
    assert "notifyy" in out.stderr


def test_unit_promises() -> None:
    lines = {line.strip() for line in UNIT.read_text().splitlines()}
    for needed in (
        "Type=notify",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "User=recyclops",
        "ReadWritePaths=/var/lib/recyclops",
    ):
        assert needed in lines
    assert any(line.startswith("WatchdogSec=") for line in lines)
    assert any(line.startswith("LoadCredential=mqtt_password:") for line in lines)


def test_install_script_parses_and_pins_numpy() -> None:
    script = EDGE / "install" / "install-pi.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    assert "--system-site-packages" in text and "python3-picamera2" in text
    assert '-c "$PREFIX/constraints.txt"' in text
