"""``recyclops clean`` as a real process: SIGKILL mid-session, SIGTERM, public bind refused."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from clean_helpers import request, seed_simple
from support.devservers import S3Server
from support.waiting import wait_until

from recyclops.shared.journals import parse_journal
from recyclops.shared.store import ObjectStore


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RECYCLOPS_CLEAN_TOKEN", "CREDENTIALS_DIRECTORY")
    }
    env.update(extra)
    return env


def clean_cmd(s3_url: str, s3_server: S3Server | None, *args: str) -> list[str]:
    endpoint = ["--endpoint-url", s3_server.endpoint_url] if s3_server else []
    return [
        sys.executable,
        "-m",
        "recyclops.app.cli",
        "clean",
        "--store",
        s3_url,
        *endpoint,
        *args,
    ]


@contextmanager
def clean_process(
    s3_server: S3Server, s3_url: str, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    cmd = clean_cmd(s3_url, s3_server, "--port", "0", "--reviewer", "cli", *args)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env or _env()
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "serving http://" in line, (
            line,
            proc.stderr.read() if proc.poll() is not None else "",
        )
        base = line.split("serving ", 1)[1].split()[0].rstrip("/")
        wait_until(lambda: request(base, "GET", "/healthz")[0] == 200, 10, "/healthz")
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def _journal(store: ObjectStore, session: str) -> list[tuple[str, str, str | None]]:
    decisions, problems = parse_journal(store.get(f"labels/{session}.jsonl").decode())
    assert not problems
    return [(d.sha256, d.action, d.label) for d in decisions]


def test_killed_mid_session_keeps_decisions(
    s3_server: S3Server, s3_url: str, s3_store: ObjectStore
) -> None:
    a, b, c, _d = seed_simple(s3_store, 4)
    with clean_process(s3_server, s3_url, "--flush-seconds", "1") as (proc, base):
        session = request(base, "GET", "/api/state")[1]["session"]
        for sha, label in ((a, "glass"), (b, "metal"), (c, "paper")):
            assert request(base, "POST", "/api/decide", {"sha256": sha, "label": label})[0] == 200
        assert request(base, "POST", "/api/back", {})[0] == 200  # withdraw c

        def saved() -> bool:  # the flusher wrote all four decisions (every 1 s)
            saving = request(base, "GET", "/api/state")[1]["saving"]
            return bool(saving["decisions"] == 4 and not saving["unsaved"])

        wait_until(saved, 10, "a flush of all four decisions")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    assert _journal(s3_store, session) == [
        (a, "label", "glass"),
        (b, "label", "metal"),
        (c, "label", "paper"),
        (c, "withdraw", None),
    ]


def test_sigterm_saves_and_exits_cleanly(
    s3_server: S3Server, s3_url: str, s3_store: ObjectStore
) -> None:
    (a, *_) = seed_simple(s3_store, 2)
    with clean_process(s3_server, s3_url, "--flush-seconds", "60") as (proc, base):
        session = request(base, "GET", "/api/state")[1]["session"]
        assert request(base, "POST", "/api/decide", {"sha256": a, "label": "trash"})[0] == 200
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "1 decisions saved" in out
    assert _journal(s3_store, session) == [(a, "label", "trash")]


def test_public_bind_without_token_is_refused(s3_server: S3Server, s3_url: str) -> None:
    cmd = clean_cmd(s3_url, s3_server, "--host", "0.0.0.0", "--port", "0")
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=60)
    assert done.returncode == 1
    assert "needs a token" in done.stderr and "RECYCLOPS_CLEAN_TOKEN" in done.stderr


def test_public_bind_with_token_wants_it(
    s3_server: S3Server, s3_url: str, s3_store: ObjectStore
) -> None:
    (a,) = seed_simple(s3_store, 1)
    token = "cli-token-0123456789abcdef"
    env = _env(RECYCLOPS_CLEAN_TOKEN=token)
    with clean_process(s3_server, s3_url, "--host", "0.0.0.0", env=env) as (proc, base):
        assert proc.stdout is not None
        assert "?token=<your token>" in proc.stdout.readline()
        body = {"sha256": a, "label": "glass"}
        assert request(base, "GET", "/api/state")[0] == 401
        assert request(base, "POST", "/api/decide", body)[0] == 401
        assert request(base, "POST", "/api/decide", body, {"X-Recyclops-Token": token})[0] == 200


@pytest.mark.parametrize("bad", [["--port", "70000"], ["--flush-seconds", "0"]])
def test_bad_options_name_the_problem(s3_url: str, bad: list[str]) -> None:
    cmd = clean_cmd(s3_url, None, *bad)
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=60)
    assert done.returncode != 0
    assert f"command line: {bad[0].lstrip('-').replace('-', '_')}:" in done.stderr
    assert "Traceback" not in done.stderr
