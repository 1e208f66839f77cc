"""docker/mosquitto: the real mosquitto with the repository's config, users and ACL.

The compose service runs the same files in eclipse-mosquitto:2; here the paths are pointed
at a temporary folder and the listener at a free loopback port.
"""

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from support.devservers import free_port
from support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "docker" / "mosquitto"
PASSWORDS = {"jobs": "jobs-secret", "edge": "edge-secret", "viewer": "viewer-secret"}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[int]:
    for tool in ("mosquitto", "mosquitto_passwd"):
        if not (shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")):
            pytest.skip(f"{tool} not installed (apt-get install mosquitto)")
    port = free_port()
    conf = (SRC / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "\nlistener 1883\n" in conf
    conf = (
        conf.replace("/mosquitto/data/passwd", str(tmp_path / "passwd"))
        .replace("/mosquitto/config/acl", str(SRC / "acl"))
        .replace("/mosquitto/data/", f"{tmp_path}/")
        .replace("\nlistener 1883\n", f"\nlistener {port} 127.0.0.1\n")
    )
    if os.geteuid() == 0:  # pytest's temporary folders are private to root: stay root
        conf += "user root\n"
    (tmp_path / "mosquitto.conf").write_text(conf)
    env = {
        **os.environ,
        "PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin",
        "MOSQUITTO_CONF": str(tmp_path / "mosquitto.conf"),
        "MOSQUITTO_PASSWD": str(tmp_path / "passwd"),
        **{f"MQTT_{user.upper()}_PASSWORD": pw for user, pw in PASSWORDS.items()},
    }
    with open(tmp_path / "broker.log", "wb") as log:
        proc = subprocess.Popen(
            ["sh", str(SRC / "start.sh")],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def listening() -> bool:
            assert proc.poll() is None, (tmp_path / "broker.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
            except OSError:
                return False
            return True

        wait_until(listening, 15, "the broker listening")
        assert "jobs-secret" not in (tmp_path / "passwd").read_text()  # hashed, not plain
        assert oct((tmp_path / "passwd").stat().st_mode & 0o777) == "0o600"
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def connect(port: int, user: str | None, password: str | None) -> tuple[mqtt.Client, int]:
    """Connect and return the client and the CONNACK reason code (0 = accepted)."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{user}-{time.monotonic_ns()}"
    )
    if user:
        client.username_pw_set(user, password)
    result: list[int] = []
    done = threading.Event()

    def on_connect(
        c: mqtt.Client, u: object, flags: object, reason: mqtt.ReasonCode, p: object
    ) -> None:
        result.append(reason.value)
        done.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    assert done.wait(5), "no CONNACK"
    return client, result[0]


def test_anonymous_and_wrong_passwords_are_refused(broker: int) -> None:
    for user, password in ((None, None), ("jobs", "wrong"), ("nobody", "x")):
        client, code = connect(broker, user, password)
        client.loop_stop()
        client.disconnect()
        assert code != 0, f"{user!r} was let in"


def test_the_acl_lets_jobs_announce_models_and_stops_edges_doing_so(broker: int) -> None:
    viewer, code = connect(broker, "viewer", PASSWORDS["viewer"])
    assert code == 0
    got: list[tuple[str, bytes]] = []
    subscribed = threading.Event()

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        got.append((msg.topic, msg.payload))

    viewer.on_message = on_message
    viewer.on_subscribe = lambda *_: subscribed.set()
    viewer.subscribe("recyclops/#", qos=1)
    assert subscribed.wait(5), "no SUBACK"
    edge, code = connect(broker, "edge", PASSWORDS["edge"])
    assert code == 0
    edge.publish("recyclops/default/models/stable", b"forged by an edge", qos=1).wait_for_publish(5)
    edge.publish("recyclops/default/devices/bin-01/status", b"online", qos=1).wait_for_publish(5)
    jobs, code = connect(broker, "jobs", PASSWORDS["jobs"])
    assert code == 0
    jobs.publish("recyclops/default/models/stable", b"v2", qos=1).wait_for_publish(5)
    # The broker passes on one client's messages in the order it sent them (MQTT's ordered
    # topics; one subscription): once the edge's status is here, its forged model notice,
    # sent before it, has been dealt with, so its absence below means it was refused.
    status = ("recyclops/default/devices/bin-01/status", b"online")
    wait_until(lambda: status in got and ("recyclops/default/models/stable", b"v2") in got, 5)
    for client in (viewer, edge, jobs):
        client.loop_stop()
        client.disconnect()
    assert sorted(got) == [
        ("recyclops/default/devices/bin-01/status", b"online"),
        ("recyclops/default/models/stable", b"v2"),
    ]
