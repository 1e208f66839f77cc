"""Per-device certificates (mutual TLS, as AWS IoT Core does it) against a real mosquitto with
``require_certificate true``: a CA, the broker's certificate and clients' certificates made
here with the openssl command. A bin with its certificate receives the cloud's notice (both
through the configuration pipeline: certificate path in the config, key as the secret
``mqtt_client_key`` in the credentials directory); a bin without one, or with one from
another CA, is refused and told why; a bad certificate or key is an error naming it."""

import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support import devservers
from support.waiting import wait_until

from recyclops.cloud.publish import notify
from recyclops.shared.config import MqttConfig
from recyclops.shared.config.pipeline import resolve
from recyclops.shared.errors import ConfigError
from recyclops.shared.manifest import ModelRef
from recyclops.shared.messages import model_topic, parse_message
from recyclops.shared.mqtt import MqttClient, MqttError

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    openssl("req", "-x509", *EC, "-keyout", key, "-out", cert, "-days", "2", "-subj",
            f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    return cert, key


def issue(folder: Path, ca: tuple[Path, Path], name: str, ext: str) -> tuple[Path, Path]:
    cert, key, csr = folder / f"{name}.pem", folder / f"{name}.key", folder / f"{name}.csr"
    (folder / f"{name}.ext").write_text(ext)
    openssl("req", *EC, "-keyout", key, "-out", csr, "-subj", f"/CN={name}")
    openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
            "-out", cert, "-days", "2", "-extfile", folder / f"{name}.ext")  # fmt: skip
    return cert, key


@dataclass(frozen=True)
class Pki:
    ca: Path
    bin_cert: Path
    bin_key: Path
    cloud_cert: Path
    cloud_key: Path
    stranger_cert: Path  # a client certificate from another CA
    stranger_key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = make_ca(folder, "fleet-ca")
    other = make_ca(folder, "other-ca")
    client = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
    server = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    issue(folder, ca, "broker", server)
    return Pki(
        ca[0],
        *issue(folder, ca, "bin-001", client),
        *issue(folder, ca, "cloud", client),
        *issue(folder, other, "stranger", client),
    )


@pytest.fixture(scope="module")
def broker(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[devservers.MqttBroker]:
    folder = pki.ca.parent
    tls = devservers.BrokerTls(pki.ca, folder / "broker.pem", folder / "broker.key")
    with devservers.mosquitto(tmp_path_factory.mktemp("mosquitto-tls"), tls=tls) as running:
        yield running


def config_for(broker: devservers.MqttBroker, pki: Pki, cert: Path | None) -> MqttConfig:
    return MqttConfig(
        host=broker.host,
        port=broker.port,
        fleet="certs",
        tls=True,
        ca_file=str(pki.ca),
        cert_file=str(cert) if cert else None,
    )


def through_pipeline(
    tmp_path: Path, broker: devservers.MqttBroker, pki: Pki, cert: Path, key: Path
) -> tuple[MqttConfig, dict[str, str]]:
    """A device's configuration as its service gets it: the certificate's path in the file,
    the key in the credentials directory (systemd ``LoadCredential=mqtt_client_key:…``)."""
    creds = tmp_path / f"credentials-{cert.stem}"
    creds.mkdir()
    shutil.copy(key, creds / "mqtt_client_key")
    toml = tmp_path / f"{cert.stem}.toml"
    toml.write_text(
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\nfleet = "certs"\ntls = true\n'
        f'ca_file = "{pki.ca}"\ncert_file = "{cert}"\n'
    )
    env = {"CREDENTIALS_DIRECTORY": str(creds)}
    resolved = resolve(toml, env=env)
    key_text, origin = resolved.secret("mqtt_client_key")
    assert key_text == key.read_text().strip()
    assert origin == "$CREDENTIALS_DIRECTORY/mqtt_client_key"
    return resolved.config.mqtt, env


def test_a_bin_with_its_certificate_receives_the_clouds_notice(
    broker: devservers.MqttBroker, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    device, device_env = through_pipeline(tmp_path, broker, pki, pki.bin_cert, pki.bin_key)
    cloud, cloud_env = through_pipeline(tmp_path, broker, pki, pki.cloud_cert, pki.cloud_key)
    got: list[bytes] = []
    arrived = threading.Event()
    topic = model_topic("certs", "stable")
    for name, value in device_env.items():
        monkeypatch.setenv(name, value)  # MqttClient reads the key as every secret is read
    sub = MqttClient(device, "recyclops-edge-bin-001")
    sub.subscribe(topic, lambda _t, payload: (got.append(payload), arrived.set()))
    try:
        assert sub.start(wait=10), sub.last_error
        notice = ModelRef(
            channel="stable",
            version="v7",
            manifest_key="models/v7/manifest.json",
            manifest_sha256="c" * 64,
            published_at=datetime.now(UTC),
            generation=7,
        )
        for name, value in cloud_env.items():
            monkeypatch.setenv(name, value)  # the cloud's own certificate and key
        notify(cloud, notice, timeout=10)
        assert arrived.wait(10)
        assert parse_message(ModelRef, got[-1]) == notice
    finally:
        sub.stop()


@pytest.mark.parametrize(
    ("cert", "expected"),
    [
        (None, "requires a client certificate: set mqtt.cert_file and the mqtt_client_key"),
        ("stranger", "refused the client certificate mqtt.cert_file"),
    ],
)
def test_a_client_without_a_fleet_certificate_is_refused_and_told_why(
    broker: devservers.MqttBroker, pki: Pki, cert: str | None, expected: str
) -> None:
    config = config_for(broker, pki, pki.stranger_cert if cert else None)
    key = pki.stranger_key.read_text() if cert else None
    client = MqttClient(config, client_key=key)
    got: list[bytes] = []
    client.subscribe(model_topic("certs", "stable"), lambda _t, p: got.append(p))
    try:
        client.start()
        error = wait_until(lambda: client.last_error, 15, "the refusal explained")
        assert expected in error
        assert not client.connected and not got
    finally:
        client.stop()


def test_a_bad_certificate_or_key_is_an_error_naming_the_setting(
    broker: devservers.MqttBroker, pki: Pki, tmp_path: Path
) -> None:
    good_key = pki.bin_key.read_text()
    cases = [
        (tmp_path / "missing.pem", good_key, "mqtt.cert_file: "),
        (tmp_path, good_key, "mqtt.cert_file: "),  # a folder: unreadable
        (pki.bin_key, good_key, "not a PEM certificate"),
        (pki.bin_cert, pki.stranger_key.read_text(), "is not the private key of mqtt.cert_file"),
        (pki.bin_cert, pki.bin_cert.read_text(), "mqtt_client_key (from the caller): not a PEM"),
        (pki.bin_cert, None, "the client key is not: put it in $CREDENTIALS_DIRECTORY"),
    ]
    for cert, key, expected in cases:
        with pytest.raises(MqttError) as caught:
            MqttClient(config_for(broker, pki, cert), client_key=key)
        assert expected in str(caught.value), (cert, str(caught.value))
    with pytest.raises(MqttError, match=r"mqtt_client_key is set .* but mqtt\.cert_file is not"):
        MqttClient(config_for(broker, pki, None), client_key=good_key)
    with pytest.raises(ConfigError, match=r"cert_file .* needs tls = true"):
        resolve(None, env={"RECYCLOPS_MQTT__CERT_FILE": str(pki.bin_cert)})


def test_the_client_key_is_a_secret_never_read_from_the_file(tmp_path: Path) -> None:
    toml = tmp_path / "recyclops.toml"
    toml.write_text('mqtt_client_key = "-----BEGIN PRIVATE KEY-----"\n')
    with pytest.raises(ConfigError, match=r"mqtt_client_key: secrets are never read"):
        resolve(toml, env={})
