"""A private Docker engine for the container test: start, build, run, and stop by id.

docker/engine.sh starts dockerd with its own data-root, exec-root, pid file and socket under
build/engine; the images are built with BuildKit and the host network (no registry, no
bridge). Everything started here is stopped here: containers by id, dockerd by its pid.
"""

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENGINE_DIR = ROOT / "build" / "engine"
BASE_IMAGE = "recyclops-base:bookworm"
CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


def docker_cli() -> str | None:
    """Debian's docker.io CLI first: it matches its dockerd and has BuildKit built in."""
    return shutil.which("docker", path="/usr/bin") or shutil.which("docker")


def missing_requirements() -> str | None:
    """Why the container test cannot run here, or None."""
    if os.environ.get("RECYCLOPS_CONTAINER_TEST") != "1":
        return "builds images for minutes: run it with `make container-test`"
    if os.geteuid() != 0:
        return "needs root (dockerd, debootstrap)"
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    if not shutil.which("dockerd", path=path) or not docker_cli():
        return "needs Debian's docker.io (WITH_DOCKER=1 ./.ci/system-deps)"
    cached = (ROOT / "build" / "base" / "bookworm-python3.tar").is_file()
    if not cached and not shutil.which("debootstrap", path=path):
        return "needs debootstrap to build the base image (WITH_DOCKER=1 ./.ci/system-deps)"
    return None


class Engine:
    """The docker CLI pointed at the private engine's socket."""

    def __init__(self, host: str, logs: Path) -> None:
        self.env = {**os.environ, "DOCKER_HOST": host, "DOCKER_BUILDKIT": "1"}
        self.cli = docker_cli() or "docker"
        self.env["DOCKER"] = self.cli
        self.logs = logs
        self.containers: list[str] = []
        self.volumes: list[str] = []

    def run_cli(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        out = subprocess.run(
            [self.cli, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and out.returncode != 0:
            raise AssertionError(f"docker {' '.join(args[:3])}… failed:\n{out.stderr[-3000:]}")
        return out.stdout

    def base_image(self) -> None:
        log = self.logs / "base-image.log"
        with open(log, "w") as fh:
            code = subprocess.run(
                [str(ROOT / "docker" / "base-image.sh"), BASE_IMAGE],
                env=self.env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                timeout=1200,
            ).returncode
        assert code == 0, log.read_text()[-3000:]

    def build(self, dockerfile: str, tag: str, **args: str) -> float:
        """Build docker/<dockerfile> from the repository root; returns seconds taken."""
        cmd = [
            self.cli,
            "build",
            "--network",
            "host",
            "--progress",
            "plain",
            "-f",
            f"docker/{dockerfile}",
            "-t",
            tag,
            "--build-arg",
            f"BASE={BASE_IMAGE}",
        ]
        for key, value in args.items():
            cmd += ["--build-arg", f"{key}={value}"]
        # This machine reaches PyPI through a TLS proxy: its CA bundle goes in as a BuildKit
        # secret (never a layer). A host with direct access needs none of this.
        bundle = os.environ.get("PIP_CERT") or next(
            (b for b in CA_BUNDLES if Path(b).is_file()), None
        )
        if bundle:
            cmd += ["--secret", f"id=pip_cert,src={bundle}"]
        log = self.logs / f"build-{tag.replace(':', '-').replace('/', '-')}.log"
        start = time.monotonic()
        with open(log, "w") as fh:
            code = subprocess.run(
                [*cmd, "."],
                cwd=ROOT,
                env=self.env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                timeout=1800,
            ).returncode
        assert code == 0, f"build of {tag} failed:\n{log.read_text()[-4000:]}"
        return time.monotonic() - start

    def start(
        self,
        image: str,
        *args: str,
        env: dict[str, str] | None = None,
        options: tuple[str, ...] = (),
    ) -> str:
        """docker run -d on the host network; the container is removed at the end."""
        flags = [f"--env={k}={v}" for k, v in (env or {}).items()]
        cid = self.run_cli("run", "-d", "--network", "host", *flags, *options, image, *args)
        cid = cid.strip()
        self.containers.append(cid)
        return cid

    def run(
        self,
        image: str,
        *args: str,
        env: dict[str, str] | None = None,
        options: tuple[str, ...] = (),
        timeout: float = 900,
        network: str = "host",
    ) -> subprocess.CompletedProcess[str]:
        """docker run (foreground), output captured; on the host network unless told."""
        flags = [f"--env={k}={v}" for k, v in (env or {}).items()]
        return subprocess.run(
            [self.cli, "run", "--rm", "--network", network, *flags, *options, image, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def inspect(self, cid: str) -> dict:  # type: ignore[type-arg]
        return json.loads(self.run_cli("inspect", cid))[0]  # type: ignore[no-any-return]

    def logs_of(self, cid: str) -> str:
        out = subprocess.run(
            [self.cli, "logs", cid], env=self.env, capture_output=True, text=True, timeout=60
        )
        return out.stdout + out.stderr

    def volume(self) -> str:
        """A new named volume (removed at the end), like compose's data and runs volumes."""
        name = self.run_cli("volume", "create").strip()
        self.volumes.append(name)
        return name

    def remove_all(self) -> None:
        for cid in reversed(self.containers):
            with contextlib.suppress(Exception):
                self.run_cli("rm", "-f", cid, check=False, timeout=60)
        for name in self.volumes:
            with contextlib.suppress(Exception):
                self.run_cli("volume", "rm", "-f", name, check=False, timeout=60)
        self.containers.clear()
        self.volumes.clear()


@contextlib.contextmanager
def private_engine(logs: Path) -> Iterator[Engine]:
    """Start dockerd (unless this checkout's engine already runs), stop it afterwards."""
    script = str(ROOT / "docker" / "engine.sh")
    env = {**os.environ, "RECYCLOPS_ENGINE_DIR": str(ENGINE_DIR)}
    already = subprocess.run([script, "env"], env=env, capture_output=True, text=True)
    started = subprocess.run([script, "start"], env=env, capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    host = started.stdout.strip().split("=", 1)[1]
    engine = Engine(host, logs)
    try:
        yield engine
    finally:
        engine.remove_all()
        # Old layers of rebuilt images: bounded disk use across runs (the cache stays).
        engine.run_cli("image", "prune", "-f", check=False, timeout=300)
        if already.returncode != 0:  # we started it: stop it (by its pid file)
            subprocess.run([script, "stop"], env=env, timeout=120)
