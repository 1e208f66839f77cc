"""The README's `make demo` path, smaller (random weights, tiny input), end to end."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recyclops.shared.store import LocalStore


@pytest.mark.slow
def test_demo_runs_the_whole_loop_and_leaves_nothing_running(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "recyclops.shared.cli", "demo", "--tiny", "--workdir", str(work)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    for step in ("[1/5] gather", "[2/5] review", "[3/5] setup", "[4/5] edge", "[5/5] summary"):
        assert step in out
    store = LocalStore(work / "store")
    pointer = json.loads(store.get("models/channels/stable.json"))
    version = pointer["version"]
    assert f"the bin switched to {version} by itself (poll" in out
    # 6 classes x 32 seeded gathers, plus the one the simulated key press made
    gathered = [k for k in store.list("gathered/demo-bin/") if k.endswith(".json")]
    assert len(gathered) == 6 * 32 + 1
    journals = list(store.list("labels/"))
    assert len(journals) == 1
    lines = store.get(journals[0]).decode().splitlines()
    actions = [json.loads(line)["action"] for line in lines]
    assert actions.count("withdraw") == 1 and actions.count("label") == 6 * 32 + 1
    assert "classified 48 replayed frames" in out
    status = json.loads((work / "edge" / "state" / "status.json").read_text())
    assert status["state"] == "stopped" and status["model_version"] == version
    with pytest.raises(ProcessLookupError):
        os.kill(int(status["pid"]), 0)
