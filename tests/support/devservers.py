"""Real S3 (SeaweedFS) and MQTT (mosquitto) servers on loopback, for tests, demos and benchmarks.

Every port is picked free, so several sessions can run side by side; every process is
stopped by the context manager that started it.
"""

import contextlib
import getpass
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from recyclops.shared.errors import RecyclopsError

from .waiting import wait_until

logger = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    def listening() -> bool:
        if proc.poll() is not None:
            raise RecyclopsError(f"server exited early ({proc.returncode}); see {log}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        return False

    try:
        wait_until(listening, timeout, f"port {port}")
    except AssertionError:
        raise RecyclopsError(
            f"server did not open port {port} within {timeout}s; see {log}"
        ) from None


def _stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout)


def find_binary(name: str) -> str:
    """Look beside the running interpreter first (a venv's bin/), then on PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not found:
        raise RecyclopsError(f"{name} not found: install it (see README, 'make install')")
    return found


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str
    bucket: str

    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }


@contextlib.contextmanager
def seaweedfs(
    workdir: str | Path,
    bucket: str = "recyclops",
    timeout: float = 60.0,
    *,
    auto_create_bucket: bool = True,
) -> Iterator[S3Server]:
    """Run ``weed mini`` with S3 on a free port; yields its endpoint and keys.

    ``auto_create_bucket=False`` makes a write to a missing bucket fail with NoSuchBucket, as
    on AWS (SeaweedFS otherwise creates it), so tests can see a mistyped bucket refused."""
    workdir = Path(workdir)
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    access, secret = "recyclops-test", "recyclops-test-secret"
    config = {
        "identities": [
            {
                "name": "admin",
                "credentials": [{"accessKey": access, "secretKey": secret}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    (workdir / "s3.json").write_text(json.dumps(config))
    ports = {
        name: free_port()
        for name in (
            "s3.port",
            "master.port",
            "filer.port",
            "volume.port",
            "admin.port",
            "webdav.port",
            "master.port.grpc",
            "filer.port.grpc",
            "volume.port.grpc",
            "s3.port.grpc",
            "admin.port.grpc",
            "s3.port.iceberg",
            "s3.port.lance",
            "debug.port",
        )
    }
    args = [
        find_binary("weed"),
        "mini",
        f"-dir={workdir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.config={workdir / 's3.json'}",
        f"-bucket={bucket}",
        "-admin.ui=false",
        "-webdav=false",
        f"-s3.autoCreateBucket={'true' if auto_create_bucket else 'false'}",
    ] + [f"-{name}={port}" for name, port in ports.items()]
    log = workdir / "weed.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_port(ports["s3.port"], proc, timeout, log)
        server = S3Server(f"http://127.0.0.1:{ports['s3.port']}", access, secret, bucket)
        _wait_bucket(server, proc, timeout, log)
        yield server
    finally:
        _stop(proc)


def _wait_bucket(
    server: S3Server, proc: subprocess.Popen[bytes], timeout: float, log: Path
) -> None:
    """The S3 port opens before the filer is ready: wait until a real put succeeds."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5),
    )
    last: list[Exception] = []

    def writable() -> bool:
        if proc.poll() is not None:
            raise RecyclopsError(f"weed exited early ({proc.returncode}); see {log}")
        try:
            with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                client.create_bucket(Bucket=server.bucket)
            client.put_object(Bucket=server.bucket, Key=".ready", Body=b"1")
            client.delete_object(Bucket=server.bucket, Key=".ready")
        except Exception as exc:  # the filer is still starting
            last[:] = [exc]
            return False
        return True

    try:
        wait_until(writable, timeout, "a put to SeaweedFS", max_step=0.3)
    except AssertionError:
        raise RecyclopsError(
            f"SeaweedFS S3 not ready within {timeout}s: {last[0] if last else None}; see {log}"
        ) from None


@dataclass(frozen=True)
class MqttBroker:
    host: str
    port: int
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        """Stop the broker (tests use this to show that updates fall back to polling)."""
        _stop(self.process)


@dataclass(frozen=True)
class BrokerTls:
    """A TLS listener's files: the CA its clients' certificates must come from (and that
    signed its own), its certificate and key."""

    ca: Path
    cert: Path
    key: Path


@contextlib.contextmanager
def mosquitto(
    workdir: str | Path,
    port: int | None = None,
    timeout: float = 15.0,
    *,
    persistence: bool = False,
    tls: BrokerTls | None = None,
) -> Iterator[MqttBroker]:
    """Run mosquitto with one anonymous listener on 127.0.0.1. ``persistence=True`` keeps
    retained messages in ``workdir`` across a restart, as a production broker does. ``tls``
    makes the listener TLS-only and requires a client certificate issued by its CA (mutual
    TLS, as AWS IoT Core does)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    conf = workdir / "mosquitto.conf"
    keep = f"persistence true\npersistence_location {workdir}/\n" if persistence else ""
    # as root mosquitto drops to its own user, who cannot write or read here: stay this user
    user = f"user {getpass.getuser()}\n" if persistence or tls else ""
    secure = (
        f"cafile {tls.ca}\ncertfile {tls.cert}\nkeyfile {tls.key}\nrequire_certificate true\n"
        if tls
        else ""
    )
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\n"
        + secure
        + user
        + (keep or "persistence false\n")
        + "log_dest stderr\nlog_type error\nlog_type warning\n"
    )
    log = workdir / "mosquitto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [find_binary("mosquitto"), "-c", str(conf)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_port(port, proc, timeout, log)
        yield MqttBroker("127.0.0.1", port, proc)
    finally:
        _stop(proc)


class TcpProxy:
    """A loopback TCP relay in front of a server, so a test can cut the connection mid-way
    (``stop``) and bring it back on the same port (``start``): a store that dies mid-sync.

    ``cut_after_requests`` stops it by itself once that many HTTP requests (counted by their
    request line) went through, which makes "killed mid-sync" deterministic. ``delay``
    (settable while running) holds each chunk that long before it travels upstream: a slow
    uplink, so an upload is still running when a test interrupts it."""

    def __init__(self, target_port: int, port: int | None = None, delay: float = 0.0) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self.delay = delay
        self.requests = 0
        self.cut_after_requests: int | None = None
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "TcpProxy":
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Refuse new connections and reset every open one."""
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        for sock in [*([listener] if listener else []), *conns]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), 5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while data := src.recv(65536):
                if upstream:
                    with self._lock:
                        self.requests += sum(data.count(m) for m in _METHODS)
                        cut = (
                            self.cut_after_requests is not None
                            and self.requests > self.cut_after_requests
                        )
                    if cut:
                        self.stop()
                        return
                    if self.delay:
                        time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


_METHODS = (b"GET /", b"PUT /", b"HEAD /", b"POST /", b"DELETE /")
